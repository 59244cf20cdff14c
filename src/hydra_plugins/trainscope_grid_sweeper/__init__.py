"""Hydra sweeper plugin `trainscope_grid` (grid_sweeper.py), found via the `hydra_plugins` namespace."""
