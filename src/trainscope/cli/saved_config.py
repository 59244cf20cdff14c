"""The run's `.hydra/` files (composed config, Hydra's config, the command line), written by us, not Hydra.

Hydra writes them with a plain `open(..., "w")` before the task starts: on a full disk that truncates a resumed
run's saved config and ends in a traceback. `conf/hydra/default.yaml` sets `hydra.output_subdir: null`, and the
task writes the same three files (same names, same YAML) here, all three or none (a full disk while resuming
leaves the saved config as it was, not a new `config.yaml` beside the old `hydra.yaml`), with a one-line error.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from trainscope.core.errors import RunDirError
from trainscope.core.run_dir import SAVED_CONFIG, SAVED_HYDRA_CONFIG, SAVED_OVERRIDES, atomic_write_all


def save_run_config(run_dir: Path, cfg: DictConfig) -> None:
    """Write `<run_dir>/.hydra/{config,hydra,overrides}.yaml` as Hydra would; RunDirError if the disk is full."""
    hydra_cfg = HydraConfig.instance().cfg
    files = {
        SAVED_CONFIG: cfg,
        SAVED_HYDRA_CONFIG: hydra_cfg,
        SAVED_OVERRIDES: hydra_cfg.hydra.overrides.task,
    }
    try:  # all three or none: a resumed run's config.yaml never changes alone
        atomic_write_all({run_dir / name: OmegaConf.to_yaml(content).encode() for name, content in files.items()})
    except OSError as error:
        raise RunDirError(
            f"could not write {(run_dir / SAVED_CONFIG).parent}/ ({error.strerror or error}); free disk space "
            "(or make it writable), then run the same command again: the run's existing files are unchanged"
        ) from error
