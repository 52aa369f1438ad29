"""Catalog entries, one module each."""
