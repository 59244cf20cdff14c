"""Trials in parallel: `n_jobs` long-lived workers, each pulling trials from the study until it is done.

Started as local processes of our own (`local.py`) or as worker jobs of the configured Hydra launcher
(`launcher_jobs.py`); `worker.py` is the worker itself. Used by the Optuna sweeper only.
"""
