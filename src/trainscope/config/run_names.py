"""How a run is named where people read it: its directory's tail and its TensorBoard name share one short form.

A run directory used to carry Hydra's whole `override_dirname`
(`0_data.batch_size=32,data.num_samples=[16],model=mlp,optimizer.lr=0.3,optimizer=sgd`), which TensorBoard shows as
the run's name in every run list, cut after ~45 characters of what all runs share. The short form keeps what tells
runs apart: each override by its last dotted part, numbers rounded to two digits (`optimizer.lr=0.004627` ->
`lr=4.6e-3`), and inside a sweep only the keys the sweep varies, which the sweepers record at the sweep's root
(`SWEPT_KEYS_FILE`) before the first job's directory is named. The job number (sweeps) or the start time
(single runs, made unique by `unique_dir`) keeps directories distinct; the full override list stays in each
run's `.hydra/overrides.yaml`, its Text tab and `metrics.json`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from trainscope.config.overrides import override_key

SWEPT_KEYS_FILE = ".swept_keys.json"
"""At a sweep's root: the JSON list of the override keys the sweep varies (`["optimizer.lr", "model"]`)."""

# Hydra joins override_dirname's items with "," and a value may hold one too (`model.channels=[32,64]`): an item
# starts only where a `key=` follows the comma.
_ITEM_START = re.compile(r",(?=[+~]*[A-Za-z_][\w.@/-]*=)")


def write_sweep_record(sweep_dir: Path, file_name: str, items: Iterable[str]) -> None:
    """Write a list of names (keys, metric tags) as JSON at a sweep's root, for the sweep's runs to read."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / file_name).write_text(json.dumps(list(items)) + "\n")


def read_sweep_record(sweep_dir: Path, file_name: str) -> list[str] | None:
    """The list `write_sweep_record` wrote at `sweep_dir`; None when it holds no (readable) record."""
    try:
        items = json.loads((sweep_dir / file_name).read_text())
    except (OSError, ValueError):
        return None
    return [str(item) for item in items] if isinstance(items, list) else None


def write_swept_keys(sweep_dir: Path, keys: Iterable[str]) -> None:
    """Record at the sweep root which keys vary, before the sweep's first run starts (it names itself by them)."""
    write_sweep_record(sweep_dir, SWEPT_KEYS_FILE, sorted(set(keys)))


def swept_keys(sweep_dir: Path) -> list[str] | None:
    """The keys `write_swept_keys` recorded at `sweep_dir`; None when it holds no (readable) record."""
    return read_sweep_record(sweep_dir, SWEPT_KEYS_FILE)


def override_items(override_dirname: str) -> list[str]:
    """Hydra's `override_dirname` (`a=1,b=[2,3]`) back into its `key=value` items."""
    return _ITEM_START.split(override_dirname) if override_dirname else []


def shown_overrides(overrides: Sequence[str], varying: Iterable[str] | None) -> list[str]:
    """The short form of the `overrides` whose key is in `varying` (all of them when `varying` is None)."""
    keep = None if varying is None else set(varying)
    return [short_override(item) for item in overrides if keep is None or override_key(item) in keep]


def short_override(override: str) -> str:
    """`optimizer.lr=0.004627` -> `lr=4.6e-3`; `model=cnn` stays."""
    key, _, value = override.partition("=")
    return f"{override_key(key).rsplit('.', 1)[-1]}={_round(value)}"


def _round(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):  # `inf`, `nan`: as written
        return value
    if number.is_integer() and abs(number) < 1e5 and "e" not in value.lower():
        return str(int(number)) if "." not in value else value
    if number != 0 and not 0.01 <= abs(number) < 1e4:
        mantissa, exponent = f"{number:.1e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{number:.2g}"
