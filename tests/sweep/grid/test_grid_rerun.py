"""A grid sweep stopped by SIGTERM exits 143, and the same command continues it: finished runs kept untouched,
the interrupted one resumed from its checkpoint, the failed one run again (or kept, `rerun_failed=false`)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers.events import read_events
from tests.helpers.sweep import event_files, metrics, one_dir, run, scalar_steps, snapshot, start, wait_for

pytestmark = pytest.mark.slow  # every test here runs real processes for more than ~5 s

SMALL = [
    "data=synthetic",
    "data.num_samples=256",
    "model=mlp",
    "logging=minimal",
    "logging.progress_bar=false",
    "callbacks=[checkpoint]",
]


def test_sigterm_stops_a_grid_with_143_and_the_same_command_continues_it(tmp_path: Path, data_dir: Path) -> None:
    sweep_dir = tmp_path / "grid"
    args = ["-m", *SMALL, "optimizer.lr=0.01,1e30,0.02", "trainer.max_epochs=6", f"hydra.sweep.dir={sweep_dir}"]
    first = start(args, tmp_path / "outputs", data_dir)
    wait_for(lambda: list(sweep_dir.glob("2_*/checkpoints/last.pt")), first, "job 2's first checkpoint")
    first.send_signal(signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stdout[-2000:] + stderr[-2000:]
    assert "multirun: interrupted after 2 finished runs" in stderr  # job 0 completed, job 1 failed (NaN)
    assert "Traceback" not in stderr
    completed, failed, interrupted = (one_dir(sweep_dir, f"{job}_*") for job in range(3))
    assert [metrics(d)["status"] for d in (completed, failed, interrupted)] == ["completed", "failed", "interrupted"]
    assert (interrupted / "checkpoints" / "last.pt").is_file()
    kept = {d: snapshot(d) for d in (completed, failed)}

    rerun = run(args, tmp_path / "outputs", data_dir)  # the same command
    assert rerun.returncode == 1, rerun.stdout[-3000:] + rerun.stderr[-3000:]  # job 1 fails again
    retry = failed.with_name(failed.name + "_2")
    last = rerun.stdout.strip().splitlines()[-1]
    assert last.startswith("multirun: 2 succeeded, 1 failed (") and retry.name in last
    assert last.endswith("; 1 kept from before, 1 resumed")
    for run_dir, files in kept.items():  # a finished run directory is never written again
        assert snapshot(run_dir) == files
    assert len(event_files(completed)) == 1
    assert metrics(retry)["status"] == "failed"  # the failed job ran again, from scratch, next to the first try
    assert metrics(interrupted)["status"] == "completed" and metrics(interrupted)["epochs_run"] == 6
    before, after = event_files(interrupted)  # resumed: the second segment starts after the checkpoint
    epochs = read_events(interrupted).Scalars("train/loss")
    assert len(epochs) == 6 and len({e.step for e in epochs}) == 6
    assert min(scalar_steps(after, "train/loss")) > max(scalar_steps(before, "train/loss"))

    keep_failed = run([*args, "hydra.sweeper.rerun_failed=false"], tmp_path / "outputs", data_dir)
    assert keep_failed.returncode == 1
    assert keep_failed.stdout.strip().splitlines()[-1].endswith("; 3 kept from before, 0 resumed")
    assert not failed.with_name(failed.name + "_3").exists()


def test_sigterm_while_a_grid_job_starts_up_is_said_and_resumed(tmp_path: Path, data_dir: Path) -> None:
    """The signal lands once the job's run directory exists, before its first step (it builds its data and
    model): before, the sweep died silently (killed by the signal); now that job stops with a step-0
    checkpoint, the sweep exits 143 saying so, and the same command resumes the job."""
    sweep_dir = tmp_path / "grid"
    args = ["-m", *SMALL, "optimizer.lr=0.01", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"]  # one job
    first = start(args, tmp_path / "outputs", data_dir)
    wait_for(lambda: list(sweep_dir.glob("0*/.hydra/config.yaml")), first, "job 0's run directory")
    first.send_signal(signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stdout[-2000:] + stderr[-2000:]
    assert "multirun: interrupted after 0 finished runs" in stderr and "Traceback" not in stderr
    job = one_dir(sweep_dir, "0*")
    assert (metrics(job)["status"], metrics(job)["reason"]) == ("interrupted", "interrupted by SIGTERM during start-up")

    rerun = run(args, tmp_path / "outputs", data_dir)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert rerun.stdout.strip().splitlines()[-1] == "multirun: 1 succeeded, 0 failed; 0 kept from before, 1 resumed"
    assert metrics(job)["status"] == "completed"
