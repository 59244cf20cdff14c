"""Which files a test session added to the checkout: tests write only under pytest's temporary folders.

A test that runs an app without a working folder of its own (Hydra's default `outputs/<date>/<time>/`), or a
run without `paths.output_root`, would leave files in the user's tree; `tests/conftest.py` fails the session.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CACHES = ("__pycache__", ".pytest_cache", ".ruff_cache", ".import_linter_cache", ".venv", ".egg-info")
"""What Python, pytest and the linters write next to the sources: not test output."""


def untracked_entries(root: Path) -> set[str] | None:
    """The untracked files of `root`, ignored ones too, an untracked folder as one entry; None outside git.

    `--directory` keeps a virtualenv or a new `outputs/2026-01-01/` to one line, so this stays a few ms.
    """
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--others", "--directory", "-z"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None  # an unpacked source archive, not a checkout
    entries = (entry for entry in listed.stdout.split("\0") if entry)
    return {entry for entry in entries if not any(part.endswith(CACHES) for part in Path(entry).parts)}
