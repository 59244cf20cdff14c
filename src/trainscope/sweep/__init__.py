"""Hyperparameter sweeps (Optuna runner, grid and sweep reports) and the public trial API for any app.

`from trainscope.sweep import trial`: `trial()` is the running Optuna trial of this job, or None
outside a sweep (see `trainscope.trial`). Importing this package does not import optuna.
"""

from trainscope.trial import current_trial as trial

__all__ = ["trial"]
