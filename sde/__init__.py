"""Coupled-SDE approximations of discrete training (stochastic modified equations, THEORY §2)."""
