"""A job's side of a hyperparameter search: am I a trial, and should I stop?

The Optuna sweeper hands each job its trial through one channel only: environment variables set per job
with Hydra's `hydra.job.env_set.<VAR>=...` override (see `channel.py`; `current.py` reads them). Nothing
is added to the app's config, its overrides or its run directory name, and every Hydra launcher applies
`env_set`. Any Hydra app (not only trainscope's own loop) asks:

    from trainscope.sweep import trial   # the public name of `current_trial`

    t = trial()                           # None outside an Optuna sweep
    if t is not None:
        t.report(value, step)
        if t.should_prune():
            raise optuna.TrialPruned()

This package sits low in the layer contract: it imports only optuna, hydra/omegaconf and trainscope's
errors, and imports optuna only when a job really is a trial.
"""

from trainscope.trial.channel import TrialAddress
from trainscope.trial.current import current_trial

__all__ = ["TrialAddress", "current_trial"]
