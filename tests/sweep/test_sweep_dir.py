"""A sweep directory that cannot be written (a read-only share, a full disk) is one line before any job starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import TINY, TrainCLI, error_line
from tests.helpers.disk import fill_inodes, make_read_only, small_disk
from trainscope.core.errors import RunDirError
from trainscope.sweep.sweep_dir import GRID_OWNER, claim_sweep_dir


@pytest.mark.slow
def test_a_read_only_sweep_dir_is_one_line(tmp_path: Path, train: TrainCLI) -> None:
    with small_disk(tmp_path / "disk", 2**20) as disk:
        make_read_only(disk)
        result = train("-m", *TINY, "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={disk}/sweep")
        assert result.returncode == 2
        line = error_line(result)
        assert f"cannot write the sweep directory hydra.sweep.dir={disk}/sweep (Read-only file system)" in line
        assert "choose a writable hydra.sweep.dir" in line


@pytest.mark.parametrize("full", ["read_only", "no_inode_left"])
def test_claiming_an_unwritable_sweep_dir_is_one_error(tmp_path: Path, full: str) -> None:
    """What both sweepers call first (the Optuna study's processes too), on a real read-only or full tmpfs."""
    with small_disk(tmp_path / "disk", 2**20, inodes=64) as disk:
        if full == "read_only":
            make_read_only(disk)
        else:
            fill_inodes(disk)
        with pytest.raises(RunDirError, match="cannot write the sweep directory") as error:
            claim_sweep_dir(disk / "sweep", GRID_OWNER, exclusive=True, fix="-")
        assert ("Read-only file system" if full == "read_only" else "No space left on device") in str(error.value)
