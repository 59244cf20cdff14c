"""OmegaConf resolvers the configs use; registered before Hydra composes anything."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from omegaconf import OmegaConf

from trainscope.config.run_names import override_items, shown_overrides, swept_keys

# File systems cap a name at 255 bytes; leave room for the time/job-number prefix and a `_2` suffix.
MAX_DIR_NAME_BYTES = 200

_created_by_unique_dir: set[str] = set()  # absolute paths of the directories `unique_dir` made in this process


def dir_name(overrides: str, sweep_dir: str = "") -> str:
    """The tail of a run directory's name: `_<short overrides>`, or "" for none (`config/run_names.py`).

    `overrides` is Hydra's `override_dirname`; in a sweep (`sweep_dir` given) only the keys the sweep varies are
    kept, since the others are the same for every job. The separating `_` comes with the overrides, so a run
    without any is `14-05-00`, not `14-05-00_`. `/` in a value (a path, `val/acc`) would nest directories; a long
    command line would exceed the file system's name limit, so it is cut and ends in a hash of the whole, which
    keeps names distinct.
    """
    varying = swept_keys(Path(sweep_dir)) if sweep_dir else None
    name = ",".join(shown_overrides(override_items(overrides), varying))
    if not name:
        return ""
    name = name.replace(os.sep, "_")
    if len(name.encode()) > MAX_DIR_NAME_BYTES:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = name.encode()[: MAX_DIR_NAME_BYTES - len(digest) - 1].decode(errors="ignore") + f"-{digest}"
    return f"_{name}"


def unique_dir(path: str) -> str:
    """Create `path`, or `path_2`, `path_3`, ... if taken: two runs started in the same second never share one.

    `os.makedirs(exist_ok=False)` is atomic, so two processes racing for a name each get their own.
    """
    candidate, suffix = path, 1
    while True:
        try:
            os.makedirs(candidate)
            _created_by_unique_dir.add(os.path.abspath(candidate))
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = f"{path}_{suffix}"
        except OSError as error:
            # Hydra resolves this while setting up, where an exception becomes a traceback: say it in one line.
            from trainscope.core.errors import ConfigError, report_user_error

            report_user_error(
                ConfigError(
                    f"cannot create the run directory {candidate}: {error.strerror or error}; "
                    "set TRAINSCOPE_OUTPUT_DIR or paths.output_root to a writable folder"
                )
            )


def created_by_unique_dir(path: str | os.PathLike[str]) -> bool:
    """Whether `unique_dir` created `path` in this process: an auto-named directory that is this run's alone."""
    return os.path.abspath(path) in _created_by_unique_dir


def register_resolvers() -> None:
    # use_cache: Hydra resolves the run dir several times (and copies the cache into each sweep job);
    # every resolution must return the directory created the first time.
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("dir_name"):
        OmegaConf.register_new_resolver("dir_name", dir_name)
