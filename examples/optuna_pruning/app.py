"""Optuna pruning for any Hydra app with trainscope's sweeper: the app only reports and asks.

    python examples/optuna_pruning/app.py -m                          # 20 TPE trials, median pruning
    python examples/optuna_pruning/app.py -m hydra.sweeper.storage=sqlite:///study.db

Nothing here needs the trainscope checkout: copied into another project, the app runs after
`pip install trainscope`, which installs the `trainscope_optuna` sweeper (tests/package/test_installed_package.py
does exactly that with the built wheel).

The sweeper hands each job its trial through environment variables (`hydra.job.env_set`), so this
app's config has no sweep keys: `trial()` returns the running trial, or None when the app runs alone
(`python examples/optuna_pruning/app.py lr=0.3`).
"""

import hydra
import optuna
from omegaconf import DictConfig

from trainscope.sweep import trial


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Gradient descent on (w - 3)²; returns the final loss (the sweep minimizes it)."""
    t = trial()
    w, loss = float(cfg.start), float("inf")
    for step in range(1, int(cfg.steps) + 1):
        w -= float(cfg.lr) * 2 * (w - 3)
        loss = (w - 3) ** 2
        if t is not None:
            t.report(loss, step)
            if t.should_prune():  # the sweep records the trial PRUNED
                raise optuna.TrialPruned(f"loss {loss:.3g} at step {step}")
    return loss


if __name__ == "__main__":
    main()
