"""Hyperparameter sweeps, by audience: what both sweepers share lives here, each sweeper's own part below.

- here: `jobs` (a finished Hydra job as a sweeper sees it), `guarded_launcher` (no job writes into another run),
  `sweep_dir` (one sweep per directory), `experiment` (the HParams declaration at the sweep root);
- `grid/`: the grid sweeper's reruns and report line;
- `optuna/`: the Optuna sweeper (settings, search space, the study, trials) and its parallel `workers/`.

`from trainscope.sweep import trial`: `trial()` is the running Optuna trial of this job, or None
outside a sweep (see `trainscope.trial`). Importing this package does not import optuna.
"""

from trainscope.trial import current_trial as trial

__all__ = ["trial"]
