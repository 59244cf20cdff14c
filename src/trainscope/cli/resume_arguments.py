"""`python train.py resume=<run_dir> [overrides]`: the command line rewritten before Hydra starts.

The run's saved overrides (`<run_dir>/.hydra/overrides.yaml`) are replayed on the project's config tree, the new
overrides are applied on top, and Hydra's run directory is pointed at `<run_dir>`, so no new directory is created
and Hydra's logging, group choices and `.hydra/` files work as for any run. An override that would change what
the run learns is rejected in one line; only the keys in `trainscope.config.resumable` may change. Inside the run,
`trainscope.session.resume` loads the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from trainscope.config.inert import check_inert
from trainscope.config.overrides import hydra_quote, override_key, unquote, user_config_dirs
from trainscope.config.paths import CONFIG_DIR_FLAGS
from trainscope.config.resumable import is_resumable_key, resumable_keys_text
from trainscope.config.targets import check_targets
from trainscope.config.yaml_files import load_plain_yaml, load_yaml, plain_select
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import SAVED_CONFIG, SAVED_HYDRA_CONFIG, SAVED_OVERRIDES, check_run_dir
from trainscope.trial.channel import recorded_trial

log = logging.getLogger(__name__)

RESUME_KEY = "resume"
ALLOW_TARGETS_KEY = "allow_targets"


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


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat if flat or not prefix else {prefix: {}}
    return {prefix: node}


def _conflict(run_dir: Path, key: str, saved: Any, new: Any) -> ConfigError:
    return ConfigError(
        f"resume: {key} is {saved!r} in {run_dir} but {new!r} now; a resumed run keeps its config "
        f"(only {resumable_keys_text()} may change), so drop that override or start a new run"
    )


def _check_same_group_choices(run_dir: Path, overrides: list[str], config_root: Path) -> None:
    """`model=mlp` on a run trained with `model=cnn`: name the group, not one of its many keys."""
    hydra_file = run_dir / SAVED_HYDRA_CONFIG
    if not hydra_file.is_file():
        return
    choices = plain_select(load_plain_yaml(hydra_file), "hydra.runtime.choices")
    choices = choices if isinstance(choices, dict) else {}
    for override in overrides:
        if "=" not in override or override.startswith("~"):
            continue
        group, option = override_key(override), unquote(override.split("=", 1)[1])
        if group in choices and (config_root / group).is_dir() and str(choices[group]) != option:
            raise _conflict(run_dir, group, choices[group], option)


def _compose(overrides: list[str], config_root: Path, user_dirs: list[Path]) -> dict[str, Any] | None:
    """The config the resumed run will get (unresolved), or None if it does not compose.

    The user's config folders are searched as in the run itself: without them an `optional` group such as
    `experiment` whose option is not found would silently be left out, and the configs would seem to differ.
    """
    from hydra import compose, initialize_config_dir

    task_overrides = [item for item in overrides if not override_key(item).startswith("hydra")]
    if user_dirs:
        search_path = ",".join(hydra_quote(f"file://{folder.resolve()}") for folder in user_dirs)
        task_overrides.append(f"hydra.searchpath=[{search_path}]")
    try:
        with initialize_config_dir(config_dir=str(config_root), version_base="1.3"):
            composed = compose(config_name="train", overrides=task_overrides)
    except Exception as error:  # noqa: BLE001 - Hydra reports the same problem again, in its own words
        log.debug("could not compose the resumed config: %s", error)
        return None
    return OmegaConf.to_container(composed, resolve=False)  # type: ignore[return-value]


def _first_difference(saved: dict[str, Any], new: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first key (sorted) a resumed run may not change whose value differs, with both values."""
    missing = "<absent>"
    for key in sorted(set(saved) | set(new)):
        if not is_resumable_key(key) and saved.get(key, missing) != new.get(key, missing):
            return key, saved.get(key, missing), new.get(key, missing)
    return None


def _check_config_unchanged(
    run_dir: Path,
    config_root: Path,
    saved: dict[str, Any],
    as_started: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    """Compare the config the resumed run will get, key by key, with the saved one.

    First the config the run's own overrides compose to (`as_started`): a difference there is no override's
    fault but a hand edit of the saved config (or a change to the config tree) since the run started, and the
    message says so.
    """
    saved_flat = _flatten(saved)
    difference = _first_difference(saved_flat, _flatten(as_started)) if as_started is not None else None
    if difference is not None:
        key, in_file, composed = difference
        raise ConfigError(
            f"resume: the saved config changed since the checkpoint: {key} is {in_file!r} in "
            f"{run_dir / SAVED_CONFIG} but {composed!r} from the run's {SAVED_OVERRIDES} on {config_root}; "
            "a resumed run keeps its config, so undo that edit (or that change to the config tree) "
            "or start a new run"
        )
    difference = _first_difference(saved_flat, _flatten(new)) if new is not None else None
    if difference is not None:
        raise _conflict(run_dir, *difference)


def _recorded_config_dir_flags(run_dir: Path) -> list[str]:
    """`--config-dir=<folder>` for the user's config folder the run was composed with (its `--config-dir`, or
    the `./conf` of where it started), so a run is resumed from any directory with the options it used."""
    hydra_file = run_dir / SAVED_HYDRA_CONFIG
    if not hydra_file.is_file():
        return []
    sources = plain_select(load_plain_yaml(hydra_file), "hydra.runtime.config_sources")
    folders = [
        Path(str(source.get("path")))
        for source in (sources if isinstance(sources, list) else [])
        if isinstance(source, dict) and source.get("provider") == "command-line"
    ]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(
                f"resume: {run_dir} was composed with the config folder {folder}, which is gone; "
                "pass --config-dir=<a folder with the same options>"
            )
    return [f"--config-dir={folder}" for folder in folders]


def allowed_targets(arguments: list[str]) -> tuple[list[str], list[str]]:
    """The modules of `allow_targets=[a,b]` (or `=a`) and the other arguments; an argument of the command, not
    of the run's config, so a run directory can never allow its own targets."""
    allowed: list[str] = []
    rest: list[str] = []
    for argument in arguments:
        if argument.split("=", 1)[0].lstrip("+") != ALLOW_TARGETS_KEY:
            rest.append(argument)
            continue
        try:
            value = OverridesParser.create().parse_overrides([argument.lstrip("+")])[0].value()
        except HydraException:
            value = None
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) and item for item in items):
            raise ConfigError(f"{ALLOW_TARGETS_KEY} must be a list of module names, e.g. [my_pkg], got {argument!r}")
        allowed += items
    return allowed, rest


def resume_arguments(arguments: list[str], config_root: Path) -> list[str]:
    """Rewrite `resume=<run_dir> [overrides]` into the arguments Hydra needs to continue that run.

    Without `resume=` the arguments are returned unchanged. Raises a one-line CheckpointError or
    ConfigError for a directory that cannot be resumed, a `_target_` in it that is not allowed
    (`trainscope.config.targets`) or an override that conflicts with the run.
    """
    allowed, arguments = allowed_targets(arguments)
    run_dir, rest = find_resume_dir(arguments)
    if run_dir is None:
        if allowed:
            raise ConfigError(
                f"{ALLOW_TARGETS_KEY}= applies to resume= (and eval.py): a new run trusts its own command line"
            )
        return arguments
    if any(item in ("-m", "--multirun") for item in rest):
        raise ConfigError("resume= continues one run; drop -m/--multirun")
    check_run_dir(run_dir, RESUME_KEY, need_checkpoint=True)
    trial = recorded_trial(run_dir)
    if trial is not None:  # the sweeper's trial channel is not in the saved overrides: nothing to undo
        log.warning(
            "resuming trial %d of study '%s' outside the study: this run reports nothing to it and is not pruned",
            trial.number,
            trial.study_name,
        )
    flags = [item for item in rest if item.startswith("-")]
    if not any(flag.partition("=")[0] in CONFIG_DIR_FLAGS for flag in flags):
        flags = _recorded_config_dir_flags(run_dir) + flags
    user_dirs = user_config_dirs(flags) or []
    new_overrides = [item for item in rest if not item.startswith("-")]
    saved_file = run_dir / SAVED_OVERRIDES
    saved_overrides = [
        str(item)
        for item in (load_plain_yaml(saved_file) if saved_file.is_file() else [])
        if override_key(str(item)) not in (RESUME_KEY, ALLOW_TARGETS_KEY)
        and not override_key(str(item)).startswith("hydra")
    ]
    check_inert(saved_overrides, run_dir, RESUME_KEY, str(saved_file))  # before anything composes them
    replaced = {override_key(item) for item in new_overrides}
    merged = [item for item in saved_overrides if override_key(item) not in replaced] + new_overrides
    _check_same_group_choices(run_dir, new_overrides, config_root)
    saved = OmegaConf.to_container(load_yaml(run_dir / SAVED_CONFIG), resolve=False)
    as_started = _compose(saved_overrides, config_root, user_dirs)
    composed = as_started if merged == saved_overrides else _compose(merged, config_root, user_dirs)
    # Before anything is built: what the resumed run builds comes from the run directory's saved overrides.
    check_targets(composed if composed is not None else saved, run_dir, allowed, RESUME_KEY)  # type: ignore[arg-type]
    _check_config_unchanged(run_dir, config_root, saved, as_started, composed)  # type: ignore[arg-type]
    quoted = hydra_quote(run_dir)
    return [*flags, *merged, f"hydra.run.dir={quoted}", f"{RESUME_KEY}={quoted}"]
