"""The grid sweeper's own part (`hydra/sweeper=trainscope_grid`): reruns that continue a grid, its report line.

Imports the modules both sweepers share (`trainscope.sweep.*`), never the Optuna sweeper's package.
"""
