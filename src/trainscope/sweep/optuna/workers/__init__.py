"""Trials in parallel: `n_jobs` long-lived workers, each pulling trials from the study until it is done.

`worker.py` is the worker itself; it runs as a local process of our own (`local.py`) or as a job of the
configured Hydra launcher (`launcher_jobs.py`), and `supervision.py` applies one rule to a worker that ends,
whichever way it ran. Used by the Optuna sweeper only (an import-linter contract).
"""
