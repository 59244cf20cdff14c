"""The run-directory contract in-process: atomic writes, metrics.json, run checks and checkpoint fallback (fast)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from trainscope.core.checkpoint_io import keep_as_best, load_latest_checkpoint, save_checkpoint
from trainscope.core.errors import CheckpointError
from trainscope.core.run_dir import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    METRICS_FILE,
    PREVIOUS,
    SAVED_CONFIG,
    RunStatus,
    atomic_write,
    check_run_dir,
    read_metrics,
    write_metrics,
)


class Counter:
    """The smallest `Stateful`: checkpoint I/O needs nothing else."""

    def __init__(self, value: int) -> None:
        self.value = value

    def state_dict(self) -> dict:
        return {"model": {"weight": torch.tensor([float(self.value)])}, "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


def test_atomic_write_takes_bytes_a_writer_or_a_file_to_link(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.bin"
    atomic_write(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write(target, lambda handle: handle.write(b"two"))
    assert target.read_bytes() == b"two"
    copy = tmp_path / "copy.bin"
    atomic_write(copy, target)
    assert copy.read_bytes() == b"two"
    assert sorted(path.name for path in tmp_path.rglob("*.tmp")) == []


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    atomic_write(target, b"good")

    def fails(handle) -> None:
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, fails)
    assert target.read_bytes() == b"good"
    assert list(tmp_path.glob("*.tmp")) == []


def test_metrics_json_round_trip_writes_nan_as_null_and_status_as_its_string(tmp_path: Path) -> None:
    write_metrics(tmp_path, {"status": RunStatus.STOPPED_EARLY, "final": {"val/loss": math.nan, "val/acc": 0.5}})
    assert json.loads((tmp_path / METRICS_FILE).read_text())["status"] == "stopped_early"
    assert read_metrics(tmp_path) == {"status": "stopped_early", "final": {"val/loss": None, "val/acc": 0.5}}
    assert f"{RunStatus.PRUNED}" == "pruned" and RunStatus("failed") is RunStatus.FAILED


def test_check_run_dir_names_the_argument_and_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"^run=.* is not a run directory \(no \.hydra/config\.yaml in it\)"):
        check_run_dir(tmp_path)
    with pytest.raises(CheckpointError, match=r"^resume=.*: no such directory"):
        check_run_dir(tmp_path / "missing", "resume", need_checkpoint=True)
    with pytest.raises(CheckpointError, match=r"^resume=.* is not a run directory \(no \.hydra/config\.yaml\);"):
        check_run_dir(tmp_path, "resume", need_checkpoint=True)
    (tmp_path / SAVED_CONFIG).parent.mkdir()
    (tmp_path / SAVED_CONFIG).write_text("{}")
    assert check_run_dir(tmp_path) == tmp_path
    with pytest.raises(CheckpointError, match=r"has no checkpoint \(checkpoints/last\.pt\)"):
        check_run_dir(tmp_path, "resume", need_checkpoint=True)


def test_checkpoints_rotate_and_a_corrupt_last_falls_back_to_previous(tmp_path: Path, capsys) -> None:
    save_checkpoint(tmp_path, Counter(1), config_hash="abc")
    keep_as_best(tmp_path)
    save_checkpoint(tmp_path, Counter(2), config_hash="abc")
    directory = tmp_path / CHECKPOINT_DIR
    assert sorted(path.name for path in directory.iterdir()) == [BEST, LAST, PREVIOUS]

    checkpoint, path = load_latest_checkpoint(tmp_path)
    assert (path.name, checkpoint["value"], checkpoint["config_hash"]) == (LAST, 2, "abc")

    (directory / LAST).write_bytes(b"truncated")
    restored = Counter(0)
    checkpoint, path = load_latest_checkpoint(tmp_path)
    restored.load_state_dict(checkpoint)
    assert (path.name, restored.value) == (PREVIOUS, 1)
    assert (directory / (LAST + ".corrupt")).is_file() and not (directory / LAST).exists()
    assert "falling back to the previous good checkpoint" in capsys.readouterr().err

    (directory / PREVIOUS).write_bytes(b"broken too")
    (directory / LAST).write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="is unreadable too: start the run again"):
        load_latest_checkpoint(tmp_path)
