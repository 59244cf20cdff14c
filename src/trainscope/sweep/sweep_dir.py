"""One sweep directory, one sweep: a second sweep that would write run directories next to another's is refused.

Run directories in a sweep are named `<job or trial number>_<overrides>`. Two Optuna studies in one
`hydra.sweep.dir` both have a trial 0 (with the same seed, the same parameters too), and two grid sweeps at
once would both run, or resume, the same jobs: two writers in one run directory. So each sweep claims its
directory before any job starts:

- the first sweep records who owns the directory in `SWEEP_OWNER_FILE` (created exclusively, so two sweeps
  starting at the same instant cannot both win): an Optuna study (its name and storage) or a grid sweep;
  a later sweep with another owner is refused with one line, whether or not the first still runs;
- every sweep holds a lock on `SWEEP_LOCK_FILE` while it runs: shared for the processes of one Optuna study
  (its worker processes, hand-started cooperating sweeps: they get distinct trial numbers, hence distinct
  directories), exclusive for a grid sweep, so a grid rerun never resumes a job another process still runs.
  The kernel releases the lock when its process dies, so a killed sweep never blocks its rerun.
"""

from __future__ import annotations

import atexit
import fcntl
import os
from pathlib import Path

from trainscope.core.errors import ConfigError, RunDirError

SWEEP_OWNER_FILE = ".sweep_owner"
SWEEP_LOCK_FILE = ".sweep.lock"
GRID_OWNER = "a grid sweep"


def optuna_owner(study_name: str, storage: str) -> str:
    """The owner text of an Optuna study's sweep directory (storage already redacted)."""
    return f"Optuna study '{study_name}' in {storage}"


def claim_sweep_dir(sweep_dir: Path, owner: str, *, exclusive: bool, fix: str) -> None:
    """Claim `sweep_dir` for `owner` until this process ends (however the sweep ends).

    Raises a one-line ConfigError when the directory belongs to another owner or, for `exclusive`, when
    another sweep runs in it now; `fix` says what the user may do instead.
    """
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        recorded = _record_owner(sweep_dir / SWEEP_OWNER_FILE, owner)
        handle = open(sweep_dir / SWEEP_LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole sweep
    except OSError as error:  # read-only, full, not ours: before any job, in one line
        raise RunDirError(
            f"cannot write the sweep directory hydra.sweep.dir={sweep_dir} ({error.strerror or error}); "
            "choose a writable hydra.sweep.dir (or set TRAINSCOPE_OUTPUT_DIR / paths.output_root), or free space"
        ) from None
    if recorded != owner:
        handle.close()
        raise ConfigError(f"hydra.sweep.dir={sweep_dir} holds the runs of {recorded}, not {owner}; {fix}")
    try:
        fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(
            f"another sweep is running in hydra.sweep.dir={sweep_dir}; wait until it ends, then rerun this "
            "command to continue the sweep, or choose another hydra.sweep.dir"
        ) from None
    atexit.register(handle.close)  # the kernel would release the lock anyway; closing keeps Python quiet


def _record_owner(path: Path, owner: str) -> str:
    """Write `owner` into `path` unless it exists; return the owner the file names."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return path.read_text().strip() or owner  # an empty file: its writer died before writing
    with os.fdopen(descriptor, "w") as handle:
        handle.write(owner + "\n")
    return owner
