"""The training loop of the test apps: a curve rising to `x` over `steps` steps, reported to the trial.

Any Hydra app prunes this way; nothing about the trial is in the app's config.
"""

import optuna

from trainscope.sweep import trial


def climb(x: float, steps: int) -> float:
    t = trial()  # None outside an Optuna sweep
    value = 0.0
    for step in range(1, steps + 1):
        value = x * step / steps
        if t is not None:
            t.report(value, step)
            if t.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} of trial {t.number}")
    return value
