"""Hydra callbacks of `python train.py` (registered under `callbacks` in conf/hydra/default.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from trainscope.cli.errors import exit_on_user_error
from trainscope.core.run_dir import check_run_dir_free

_started_in: dict[str, Path] = {}  # "empty_dir": the single run's directory, when it was absent or empty at start


class RefuseTakenRunDir(Callback):
    """A single run into a directory that already holds a run stops with one line, before anything is written.

    `on_run_start` is the last moment before Hydra creates the directory, writes `.hydra/` and opens
    `train.log` (`run_job`); a check inside the task would come after those writes. Only the run that
    `resume=` continues may use its own directory. It also notes whether the directory was absent or empty
    (`started_in_empty_dir`): only such a directory is the run's own, to remove if it fails before training.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)  # `${hydra:...}` in hydra.run.dir resolves as in run_job
        run_dir = Path(str(config.hydra.run.dir)).resolve()  # unique_dir creates the (empty) default one here
        _started_in.pop("empty_dir", None)
        if not run_dir.is_dir() or not any(run_dir.iterdir()):
            _started_in["empty_dir"] = run_dir
        resume = config.get("resume")
        if resume is not None and Path(str(resume)).resolve() == run_dir:
            return
        with exit_on_user_error():
            check_run_dir_free(run_dir, "hydra.run.dir")


def started_in_empty_dir(run_dir: Path) -> bool:
    """Whether this single run found `run_dir` absent or empty: then everything in it is the run's own."""
    return _started_in.get("empty_dir") == run_dir.resolve()
