"""Hydra callbacks of `python train.py` (registered under `callbacks` in conf/hydra/default.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from trainscope.cli.errors import exit_on_user_error
from trainscope.core.run_dir import check_run_dir_free
from trainscope.distributed.environment import torchrun_rank


class RefuseTakenRunDir(Callback):
    """A single run into a directory that already holds a run stops with one line, before anything is written.

    `on_run_start` is the last moment before Hydra creates the directory, writes `.hydra/` and opens
    `train.log` (`run_job`); a check inside the task would come after those writes. Only the run that
    `resume=` continues may use its own directory.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if torchrun_rank() != 0:
            return  # another process of a torchrun job: it trains in the directory its rank 0 chose
        HydraConfig.instance().set_config(config)  # `${hydra:...}` in hydra.run.dir resolves as in run_job
        with exit_on_user_error():
            check_run_dir_free(Path(str(config.hydra.run.dir)), "hydra.run.dir", resume=config.get("resume"))
