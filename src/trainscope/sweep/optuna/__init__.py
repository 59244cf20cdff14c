"""The Optuna sweeper's own part (`hydra/sweeper=trainscope_optuna`): settings, search space, the study, trials.

Imports the modules both sweepers share (`trainscope.sweep.*`), never the grid sweeper's package; the parallel
workers (`workers/`) are used from here only. Importing this package does not import optuna.
"""
