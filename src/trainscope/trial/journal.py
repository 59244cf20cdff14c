"""A journal file whose last record is torn (a crash mid-write) is set aside and cut back to its complete records.

Optuna's `JournalFileBackend` appends whole lines under its lock file. A process killed in the middle of an
append leaves a last line without its newline; Optuna reads past it, but the next append lands on the same
line, and from then on every reader fails with `JSONDecodeError`: the study is lost. Opening the journal
therefore first checks, under the same lock (so no append is in progress), that the file ends with a
newline. If not, the whole file is copied to `<journal>.torn-<n>` (nothing is deleted), the file is cut back
to its last complete line, and one `warning:` line says so.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from trainscope.adapters.optuna_private import journal_lock

TORN_SUFFIX = ".torn"


def set_aside_torn_tail(journal: Path) -> Path | None:
    """Cut a torn last record off `journal`, keeping a full copy; returns the copy's path, or None if intact."""
    if not journal.is_file() or journal.stat().st_size == 0:
        return None
    with journal_lock(journal):  # the lock Optuna appends under
        with open(journal, "rb") as handle:
            content = handle.read()
        if content.endswith(b"\n"):
            return None
        complete = content.rfind(b"\n") + 1  # 0: not even the first record is whole
        backup = _free_backup_path(journal)
        shutil.copyfile(journal, backup)
        os.truncate(journal, complete)
    records = content[:complete].count(b"\n")
    print(
        f"warning: the Optuna journal {journal} ended in a torn record ({len(content) - complete} bytes, "
        f"a crash while writing); the whole file is kept as {backup} and the study continues with its "
        f"{records} complete records",
        file=sys.stderr,
        flush=True,
    )
    return backup


def _free_backup_path(journal: Path) -> Path:
    number = 1
    while (candidate := journal.with_name(f"{journal.name}{TORN_SUFFIX}-{number}")).exists():
        number += 1
    return candidate
