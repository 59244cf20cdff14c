"""Where the config tree lives, for `python train.py` and the installed console scripts alike."""

from __future__ import annotations

import os
from pathlib import Path

from trainscope.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def config_dir() -> Path:
    """`$TRAINSCOPE_CONFIG_DIR`, else `./conf` in the working directory, else the project's own `conf/`."""
    candidates = [os.environ.get("TRAINSCOPE_CONFIG_DIR"), Path.cwd() / "conf", PROJECT_ROOT / "conf"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "train.yaml").is_file():
            return Path(candidate).resolve()
    raise ConfigError(
        "no config tree found: run from the trainscope project directory or set TRAINSCOPE_CONFIG_DIR "
        "to a folder holding train.yaml"
    )
