"""A job that Hydra's launcher cannot set up fails like any failed job, and the sweep goes on (a real tmpfs that
runs out of inodes during the sweep, so Hydra's own `mkdir` of the next job's directory fails)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import TINY, TrainCLI
from tests.helpers.disk import fill_inodes, small_disk
from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView


class FillDiskAtFitEnd(Callback):
    """Uses every inode of the disk `$FILL_DISK` when the first job's training ends (once)."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        disk = Path(os.environ["FILL_DISK"])
        if not (disk / "inode-filler").exists():
            fill_inodes(disk)


@pytest.mark.slow
def test_a_full_disk_while_hydra_creates_a_jobs_directory_fails_that_job_only(
    tmp_path: Path, train: TrainCLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_disk(tmp_path / "disk", 64 * 2**20, inodes=300) as disk:
        monkeypatch.setenv("FILL_DISK", str(disk))
        sweep_dir = disk / "sweep"
        callback = f"+callbacks.fill._target_={__name__}.FillDiskAtFitEnd"
        result = train(
            "-m", *TINY, "trainer.max_epochs=1", "optimizer.lr=0.1,0.2", callback, f"hydra.sweep.dir={sweep_dir}"
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output
        assert result.returncode == 1, output  # a sweep with a failed job, as for any failed job
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, output
        assert errors[0].startswith(f"error: could not set up the run directory {sweep_dir}/1_")
        assert "(No space left on device); the job did not start" in errors[0]
        assert "multirun: 1 succeeded, 1 failed" in output
        assert (next(sweep_dir.glob("0_*")) / "metrics.json").is_file()
