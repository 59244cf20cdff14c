"""A real small file system for tests of a full disk: a tmpfs mounted for the test, and a way to fill it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def small_disk(directory: Path, size_bytes: int, inodes: int | None = None) -> Iterator[Path]:
    """A tmpfs of `size_bytes` (and at most `inodes` files and folders) at `directory`, unmounted afterwards.
    Needs root (CI and the dev machine have it): the test fails, not skips, without it."""
    directory.mkdir(parents=True, exist_ok=True)
    options = f"size={size_bytes}" + (f",nr_inodes={inodes}" if inodes else "")
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], capture_output=True, text=True
    )
    assert mount.returncode == 0, f"cannot mount a tmpfs (run the tests as root): {mount.stderr}"
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Write one file until the disk has no byte left, then free `leave` bytes of it again (a few pages: room
    for a first small file, not for the next); the file, to delete to free the space again."""
    filler = disk / "filler"
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def make_read_only(disk: Path) -> None:
    """Remount the tmpfs at `disk` read-only (as a full or read-only cluster share): every write fails with EROFS."""
    remount = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
    assert remount.returncode == 0, remount.stderr


def fill_inodes(disk: Path) -> Path:
    """Create empty files until the tmpfs at `disk` has no inode left (a new file or folder fails with ENOSPC);
    the folder that holds them, to delete to free them again."""
    folder = disk / "inode-filler"
    folder.mkdir()
    with contextlib.suppress(OSError):
        for number in range(10**7):
            (folder / str(number)).touch()
    return folder
