"""`<sweep dir>/best.yaml`: the best trial of a study as an experiment file, to run it again as a single run.

    python train.py --config-dir <sweep dir> experiment=best      # or: trainscope-train ...

The file is what the trial's job was given on its command line (its run directory's `.hydra/overrides.yaml`),
written as an experiment: a config group it chose becomes an `override /<group>: <option>` default, a value a
key (`optimizer.lr: 0.0123`), each exactly as the trial had it (floats in full precision), with the trial's seed.
So, with the config tree unchanged, the rerun composes the trial's config and, on the same device, reproduces its
metrics exactly. A sweep started from an experiment (`experiment=mnist_cnn_tune`) has that experiment included,
and `hydra.mode: RUN`, since such an experiment starts a sweep itself.

Hydra looks for `experiment=best` in `<config dir>/experiment/best.yaml`: the same file is linked there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from optuna.trial import FrozenTrial

from trainscope.config.inert import interpolation_refusal
from trainscope.core.run_dir import SAVED_HYDRA_CONFIG, SAVED_OVERRIDES, atomic_write, display_path
from trainscope.runs.record import Unreadable, read_run_yaml
from trainscope.runs.study_report import best_checkpoint
from trainscope.trial.attributes import RUN_DIR_ATTR

BEST_FILE = "best.yaml"
EXPERIMENT_GROUP = "experiment"
NOT_CARRIED = ("resume", "allow_targets")
"""How a job was started, not what it trained."""


def write_best_config(sweep_dir: Path, trial: FrozenTrial, metric: str, study_name: str) -> Path | None:
    """Write `<sweep_dir>/best.yaml` (and its `experiment/best.yaml` link) for `trial`; its path.

    None, and nothing written, for an app whose config has no `experiment` group (another Hydra app sweeping
    with our sweeper): `experiment=best` would not find the file there.
    """
    run_dir = Path(trial.user_attrs[RUN_DIR_ATTR]) if trial.user_attrs.get(RUN_DIR_ATTR) else None
    overrides = _trial_overrides(trial, run_dir)
    groups = _config_groups(run_dir)
    if EXPERIMENT_GROUP not in groups:
        return None
    content, notes = best_config(overrides, groups)
    checkpoint = best_checkpoint(run_dir) if run_dir is not None else None
    header = [
        "# @package _global_",
        f"# The best trial of Optuna study '{study_name}': trial {trial.number}, {metric}={trial.value!r}",
        f"# run directory: {run_dir if run_dir is not None else '(not recorded)'}",
        f"# checkpoint: {checkpoint if checkpoint is not None else '(none)'}",
        "# Run it again (same config, same seed: the same metrics on the same device):",
        f"#   python train.py --config-dir {display_path(sweep_dir)} experiment=best",
        *(f"# {note}" for note in notes),
    ]
    text = "\n".join(header) + "\n" + (yaml.safe_dump(content, sort_keys=False) if content else "{}\n")
    path = sweep_dir / BEST_FILE
    atomic_write(path, text.encode())
    atomic_write(sweep_dir / EXPERIMENT_GROUP / BEST_FILE, path)  # a link: one file, two names
    return path


def best_config(overrides: list[str], groups: set[str]) -> tuple[dict[str, Any], list[str]]:
    """The experiment file's content for a job's `overrides`, and notes on what it could not carry over.

    `groups`: the config groups of the run (an override of one selects an option rather than setting a value).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from trainscope.config.overrides import override_value

    defaults: list[Any] = []
    body: dict[str, Any] = {}
    notes: list[str] = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if key.split(".")[0].split("/")[0] == "hydra" or key in NOT_CARRIED:
            continue
        refused = interpolation_refusal(override.input_line)
        if refused is not None:  # the trial's run directory is untrusted input: best.yaml must stay inert
            notes.append(f"not carried over: {override.input_line} ({refused}; see docs/run-directory.md)")
        elif override.is_delete():
            notes.append(f"not carried over: {override.input_line} (add it to the command line)")
        elif key == EXPERIMENT_GROUP:
            defaults.append(f"/{EXPERIMENT_GROUP}/{override.value()}")  # included: `experiment` is this file's group
            body.setdefault("hydra", {})["mode"] = "RUN"  # such an experiment may start a sweep (hydra.mode)
        elif key in groups or "/" in key:
            defaults.append({f"override /{key}": override_value(override.value())})
        else:
            _set(body, key, override_value(override.value()))
    return ({"defaults": defaults} if defaults else {}) | body, notes


def _trial_overrides(trial: FrozenTrial, run_dir: Path | None) -> list[str]:
    """The job's command line, from its run directory; the trial's sampled parameters when that is gone."""
    if run_dir is not None:
        try:
            saved = read_run_yaml(run_dir / SAVED_OVERRIDES, default=None)
        except Unreadable:
            saved = None
        if isinstance(saved, list) and all(isinstance(item, str) for item in saved):
            return saved
    from trainscope.config.overrides import hydra_quote

    return [f"{name}={hydra_quote(value)}" for name, value in trial.params.items()]


def _config_groups(run_dir: Path | None) -> set[str]:
    """The config groups Hydra chose options of for the run (`model`, `data`, `hydra/sweeper`, ...)."""
    if run_dir is None:
        return set()
    try:
        hydra = read_run_yaml(run_dir / SAVED_HYDRA_CONFIG, default={})
    except Unreadable:
        return set()
    choices = (hydra.get("hydra", {}) or {}).get("runtime", {}).get("choices") if isinstance(hydra, dict) else None
    return set(choices) if isinstance(choices, dict) else set()


def _set(body: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[leaf] = value
