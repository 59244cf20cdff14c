"""The short name a run goes by in TensorBoard's HParams tab (the *Trial ID* column): `1202-145007 #3 lr=4.6e-3`.

TensorBoard names a session by its run's path relative to the folder it was opened on, so over `outputs/` every
row starts `multirun/2026-12-02/...` and the part that tells rows apart is cut off. A session's group name
replaces that label, so each run writes one at its start that reads the same whatever folder TensorBoard opens:

- when the run started, from its directory: `MMDD-HHMMSS` of the sweep folder (or of the single run), with the
  `_2` of a second run started in the same second; together with the job number it is unique in `outputs/`,
  because the directories it comes from are (runs with one group name would be merged into one averaged row);
- `#<n>`: the job or trial number inside a sweep;
- only what varies: the keys the sweep sweeps (`SWEPT_KEYS_FILE`, written by the sweepers at the sweep root), or
  a single run's command-line overrides, in the short form its directory's name ends with
  (`optimizer.lr=0.004627` -> `lr=4.6e-3`, `trainscope.config.run_names`).

The name is at most `MAX_NAME_CHARS` long; the full override list stays in the run's `.hydra/overrides.yaml`,
its Text tab and `metrics.json`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from trainscope.config.run_names import SWEPT_KEYS_FILE, shown_overrides, swept_keys

MAX_NAME_CHARS = 40

_DATE = re.compile(r"^\d{4}-(\d\d)-(\d\d)$")
_TIME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)(.*)$")
_SAME_SECOND = re.compile(r"_(\d+)$")
_JOB = re.compile(r"^(\d+)(?:_|$)")


def swept_keys_near(run_dir: Path) -> set[str]:
    """The keys every sweep of the output folder that holds `run_dir` records (`<outputs>/multirun/<date>/<time>/`),
    as far as they are known when the run starts: the columns the HParams tab shows first over that folder."""
    keys: set[str] = set()
    for folder in list(run_dir.parents)[:4]:
        multirun = folder if folder.name == "multirun" else folder / "multirun"
        if multirun.is_dir():
            for record in multirun.glob(f"*/*/{SWEPT_KEYS_FILE}"):
                keys.update(swept_keys(record.parent) or [])
            break
    return keys


def trial_name(run_dir: Path, overrides: Sequence[str]) -> str:
    """The HParams name of the run in `run_dir`, started with the command-line `overrides` (`key=value`)."""
    job = _JOB.match(run_dir.name)
    varying = swept_keys(run_dir.parent) if job else None
    if job and (varying is not None or _TIME.match(run_dir.parent.name)):
        head = f"{_stamp(run_dir.parent, run_dir.parent.name)} #{job.group(1)}"
    else:
        head = _stamp(run_dir, run_dir.name)
    shown = shown_overrides(overrides, varying)
    name = " ".join([head, ",".join(shown)]) if shown else head
    if len(name) <= MAX_NAME_CHARS:
        return name
    # Cut, the cut part replaced by a hash of the directory: two runs of one second stay apart.
    digest = hashlib.sha1(f"{run_dir.parent.name}/{run_dir.name}".encode()).hexdigest()[:4]
    return f"{name[: MAX_NAME_CHARS - 6]}…~{digest}"


def _stamp(folder: Path, name: str) -> str:
    """`MMDD-HHMMSS[_n]` for a folder named by the default layout (`<date>/<time>...`), else its name, cut."""
    clock = _TIME.match(name)
    date = _DATE.match(folder.parent.name)
    if clock is None:
        return name[:16]
    again = _SAME_SECOND.search(clock.group(4))
    stamp = "".join(clock.group(1, 2, 3)) + (again.group(0) if again else "")
    return f"{date.group(1)}{date.group(2)}-{stamp}" if date else stamp
