"""Continue a run in its own directory: `python train.py resume=<run_dir> [overrides]`.

The command line is rewritten before Hydra starts (`resume_arguments`): the run's saved overrides
(`<run_dir>/.hydra/overrides.yaml`) are replayed on the project's config tree, the new overrides are
applied on top, and Hydra's run directory is pointed at `<run_dir>`, so no new directory is created and
Hydra's logging, group choices and `.hydra/` files work as for any run. An override that would change
what the run learns is rejected in one line; only the keys in `RESUMABLE_KEYS` may change.

Inside the run (`engine.run.train`), `load_resume_checkpoint` loads the newest good checkpoint
(falling back from a corrupt `last.pt` to `previous.pt`), checks the config hash it was written with,
and `purge_step` tells TensorBoard to drop events the killed segment logged after that checkpoint.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainscope.config.overrides import hydra_quote, unquote
from trainscope.engine.checkpoint import CHECKPOINT_DIR, LAST, PREVIOUS, load_latest_checkpoint
from trainscope.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

RESUMABLE_KEYS: tuple[str, ...] = (
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
    "resume",
    "optuna_trial",
    "optuna_trial.*",
)
"""Config keys (fnmatch patterns) a resumed run may change: how long, where and how fast it trains,
how it logs, where data lives. Anything else would make the continued run a different run."""

RESUME_KEY = "resume"
HYDRA_DIR = ".hydra"


def is_resumable_key(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE_KEYS)


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


# --------------------------------------------------------------------------------------------------
# the command line, before Hydra


def override_key(override: str) -> str:
    """The config key (or group) an override sets: `+a.b=1` → `a.b`, `~model` → `model`."""
    key = override.split("=", 1)[0]
    return key.lstrip("~+")


def find_resume_dir(arguments: list[str]) -> tuple[Path | None, list[str]]:
    """The `resume=<run_dir>` argument (taken literally, even with `,` or `=` in the path) and the rest."""
    run_dir: Path | None = None
    rest: list[str] = []
    for argument in arguments:
        if argument.startswith(f"{RESUME_KEY}="):
            value = unquote(argument.split("=", 1)[1])
            run_dir = None if value in ("", "null") else Path(value).expanduser().resolve()
        else:
            rest.append(argument)
    return run_dir, rest


def check_run_dir(run_dir: Path) -> None:
    """A one-line CheckpointError unless `run_dir` is a trainscope run with a checkpoint to resume from."""
    if not run_dir.is_dir():
        raise CheckpointError(f"resume={run_dir}: no such directory; pass a run directory under outputs/runs")
    if not (run_dir / HYDRA_DIR / "config.yaml").is_file():
        raise CheckpointError(
            f"resume={run_dir} is not a run directory (no {HYDRA_DIR}/config.yaml); "
            "pass the directory `python train.py` printed at its start"
        )
    checkpoints = run_dir / CHECKPOINT_DIR
    if not (checkpoints / LAST).is_file() and not (checkpoints / PREVIOUS).is_file():
        raise CheckpointError(
            f"resume={run_dir} has no checkpoint ({CHECKPOINT_DIR}/{LAST}): it stopped before its first "
            "checkpoint; start it again without resume="
        )


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat if flat or not prefix else {prefix: {}}
    return {prefix: node}


def _allowed_text() -> str:
    return "trainer.max_epochs, trainer.device, trainer.limit_*_batches, trainer.test, logging.*, paths.*, data.root"


def _conflict(run_dir: Path, key: str, saved: Any, new: Any) -> ConfigError:
    return ConfigError(
        f"resume: {key} is {saved!r} in {run_dir} but {new!r} now; a resumed run keeps its config "
        f"(only {_allowed_text()} may change), so drop that override or start a new run"
    )


def _check_group_choices(run_dir: Path, overrides: list[str], config_root: Path) -> None:
    """`model=mlp` on a run trained with `model=cnn`: name the group, not one of its many keys."""
    hydra_file = run_dir / HYDRA_DIR / "hydra.yaml"
    if not hydra_file.is_file():
        return
    choices = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.choices", default=None) or {}
    for override in overrides:
        if "=" not in override or override.startswith("~"):
            continue
        group, option = override_key(override), unquote(override.split("=", 1)[1])
        if group in choices and (config_root / group).is_dir() and str(choices[group]) != option:
            raise _conflict(run_dir, group, choices[group], option)


def _check_config_unchanged(run_dir: Path, overrides: list[str], config_root: Path) -> None:
    """Compose the config the resumed run will get and compare it, key by key, with the saved one."""
    from hydra import compose, initialize_config_dir

    saved = OmegaConf.to_container(OmegaConf.load(run_dir / HYDRA_DIR / "config.yaml"), resolve=False)
    task_overrides = [item for item in overrides if not override_key(item).startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=str(config_root), version_base="1.3"):
            composed = compose(config_name="train", overrides=task_overrides)
    except Exception as error:  # noqa: BLE001 - Hydra reports the same problem again, in its own words
        log.debug("could not compose the resumed config: %s", error)
        return
    new = OmegaConf.to_container(composed, resolve=False)
    saved_flat, new_flat = _flatten(saved), _flatten(new)
    for key in sorted(set(saved_flat) | set(new_flat)):
        if is_resumable_key(key):
            continue
        missing = "<absent>"
        before, after = saved_flat.get(key, missing), new_flat.get(key, missing)
        if before != after:
            raise _conflict(run_dir, key, before, after)


def resume_arguments(arguments: list[str], config_root: Path) -> list[str]:
    """Rewrite `resume=<run_dir> [overrides]` into the arguments Hydra needs to continue that run.

    Without `resume=` the arguments are returned unchanged. Raises a one-line CheckpointError or
    ConfigError for a directory that cannot be resumed or an override that conflicts with the run.
    """
    run_dir, rest = find_resume_dir(arguments)
    if run_dir is None:
        return arguments
    if any(item in ("-m", "--multirun") for item in rest):
        raise ConfigError("resume= continues one run; drop -m/--multirun")
    check_run_dir(run_dir)
    flags = [item for item in rest if item.startswith("-")]
    new_overrides = [item for item in rest if not item.startswith("-")]
    saved_file = run_dir / HYDRA_DIR / "overrides.yaml"
    saved_overrides = [str(item) for item in (OmegaConf.load(saved_file) if saved_file.is_file() else [])]
    replaced = {override_key(item) for item in new_overrides}
    kept = [
        item
        for item in saved_overrides
        if override_key(item) not in replaced
        and override_key(item) != RESUME_KEY
        and not override_key(item).startswith(("hydra", "optuna_trial"))
    ]
    merged = kept + new_overrides
    _check_group_choices(run_dir, new_overrides, config_root)
    _check_config_unchanged(run_dir, merged, config_root)
    quoted = hydra_quote(run_dir)
    return [*flags, *merged, f"hydra.run.dir={quoted}", f"{RESUME_KEY}={quoted}"]


# --------------------------------------------------------------------------------------------------
# inside the run


def load_resume_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """The checkpoint `cfg.resume` continues from, checked against the current config.

    Loaded to the CPU (RNG states must stay there); `Trainer.load_state_dict` moves the rest.
    """
    run_dir = Path(str(cfg.resume))
    check_run_dir(run_dir)
    checkpoint, path = load_latest_checkpoint(run_dir / CHECKPOINT_DIR)
    corrupt_last = run_dir / CHECKPOINT_DIR / LAST
    if path.name == PREVIOUS and corrupt_last.exists():
        # Set aside, not deleted: the next checkpoint must not rotate it into previous.pt.
        os.replace(corrupt_last, corrupt_last.with_name(LAST + ".corrupt"))
    saved_hash = checkpoint.get("config_hash")
    if saved_hash is not None and saved_hash != config_hash(cfg):
        raise ConfigError(
            f"resume: {path} was written with a different config than {run_dir}/{HYDRA_DIR}/config.yaml "
            f"now gives (only {_allowed_text()} may change); start a new run"
        )
    state = checkpoint["trainer"]
    max_epochs = int(cfg.trainer.max_epochs)
    if state["epoch"] >= max_epochs:
        raise ConfigError(
            f"resume: {run_dir} already trained {state['epoch']} epochs (trainer.max_epochs={max_epochs}); "
            f"pass trainer.max_epochs={state['epoch'] + 1} or more to train it longer"
        )
    log.info(
        "resuming %s from %s: epoch %d, batch %d, step %d",
        run_dir,
        path.name,
        state["epoch"] + 1,
        state["batch_in_epoch"],
        state["global_step"],
    )
    return checkpoint


def purge_step(checkpoint: dict[str, Any] | None) -> int:
    """First step TensorBoard must forget: anything a killed segment logged after its checkpoint.

    Points *at* the checkpoint's step were logged before it was written (step metrics, epoch metrics),
    so they stay; the resumed run logs from the next step on. A fresh run gets 0: its writer then opens
    with a session-start marker too, because TensorBoard's Python loader (`--load_fast=false`) treats
    the first marker of a run as the initial start and purges only on later ones.
    """
    if checkpoint is None:
        return 0
    return int(checkpoint["trainer"]["global_step"]) + 1
