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


def register_resolvers() -> None:
    # use_cache: Hydra resolves the run dir several times (and copies the cache into each sweep job);
    # every resolution must return the directory created the first time.
    if not OmegaConf.has_resolver("unique_dir"):
        OmegaConf.register_new_resolver("unique_dir", unique_dir, use_cache=True)
