"""OmegaConf resolvers the configs use; registered before Hydra composes anything."""

from __future__ import annotations

import os

from omegaconf import OmegaConf


def unique_dir(path: str) -> str:
    """Create `path`, or `path_2`, `path_3`, ... if taken: two runs started in the same second never share one.

    `os.makedirs(exist_ok=False)` is atomic, so two processes racing for a name each get their own.
    """
    candidate, suffix = path, 1
    while True:
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = f"{path}_{suffix}"
        except OSError as error:
            # Hydra resolves this while setting up, where an exception becomes a traceback: say it in one line.
            from trainscope.cli.errors import report_user_error
            from trainscope.errors import ConfigError

            report_user_error(
                ConfigError(
                    f"cannot create the run directory {candidate}: {error.strerror or error}; "
                    "set TRAINSCOPE_OUTPUT_DIR or paths.output_root to a writable folder"
                )
            )


def register_resolvers() -> None:
    # use_cache: Hydra resolves the run dir several times (and copies the cache into each sweep job);
    # every resolution must return the directory created the first time.
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True)
