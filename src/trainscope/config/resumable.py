"""Which config keys a resumed run may change, and the config hash that proves the rest did not change.

`USER_RESUMABLE_KEYS` is the one list: the resume check (`trainscope.cli.resume_arguments`), the checkpoint's
config hash (`config_hash`) and the error text telling the user what may change (`resumable_keys_text`) all
read it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

USER_RESUMABLE_KEYS: tuple[str, ...] = (
    "trainer.max_epochs",
    "trainer.device",
    "trainer.limit_train_batches",
    "trainer.limit_val_batches",
    "trainer.test",
    "trainer.compile",
    "trainer.channels_last",
    "trainer.cudnn_benchmark",
    "logging",
    "logging.*",
    "paths.*",
    "data.root",
    "data.cache_dir",
    "data.download",
    "data.num_workers",
    "data.loader",
    "callbacks.checkpoint.every_n_steps",
)
"""Config keys (fnmatch patterns) a resumed run may change: how long, where and how fast it trains,
how it logs, where data lives. Anything else would make the continued run a different run."""

SET_BY_TRAINSCOPE: tuple[str, ...] = ("resume",)
"""Keys the entrypoint sets for each run; never part of what the run learns. (The Optuna sweeper's trial
travels in environment variables, `trainscope.trial`, never in the config.)"""

RESUMABLE_KEYS: tuple[str, ...] = USER_RESUMABLE_KEYS + SET_BY_TRAINSCOPE


def is_resumable_key(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE_KEYS)


def resumable_keys_text() -> str:
    """The keys a user may change on resume, for error messages: generated, so it never drifts from the list."""
    return ", ".join(USER_RESUMABLE_KEYS)


def _without_resumable_keys(node: Any, prefix: str = "") -> Any:
    if isinstance(node, dict):
        kept = {}
        for key, value in node.items():
            full_key = f"{prefix}.{key}" if prefix else str(key)
            if not is_resumable_key(full_key):
                kept[str(key)] = _without_resumable_keys(value, full_key)
        return kept
    return node


def config_hash(cfg: DictConfig) -> str:
    """sha256 of the resolved config minus `RESUMABLE_KEYS`: equal exactly when the run learns the same way."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - outside Hydra (`${hydra:...}` unresolvable): hash the raw values
        container = OmegaConf.to_container(cfg, resolve=False)
    text = json.dumps(_without_resumable_keys(container), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
