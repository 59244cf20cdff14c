"""`hydra.sweeper` of `hydra/sweeper=trainscope_grid`: every key, its type and default, written once.

`hydra_plugins/trainscope_grid_sweeper/grid_sweeper.py` registers these keys with Hydra's ConfigStore (adding
only `_target_`), so Hydra type-checks each one and the sweeper is built from them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GridSettings:
    # Jobs handed to the launcher at once (null: all); later batches run even when a job failed.
    max_batch_size: int | None = None
    # Sweep overrides from the config, e.g. {optimizer.lr: "0.1,0.01"}; command-line ones come after.
    params: dict[str, str] | None = None
    # On a rerun in the same hydra.sweep.dir, run failed jobs again (false: keep their failure).
    rerun_failed: bool = True
