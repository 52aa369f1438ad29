"""Analysis of trajectories: linearisations, comparisons and plots."""
