"""What a grid rerun decides for each job, from the run directories on disk alone (fast tier, no process).

The slow tests in this folder run real grid sweeps; these build the directories a sweep leaves (a saved
`.hydra/overrides.yaml`, a `metrics.json` status, a checkpoint) by hand and ask `plan_job` and the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainscope.core.run_dir import CHECKPOINT_DIR, EVENT_FILE_PREFIX, LAST, METRICS_FILE, SAVED_OVERRIDES, RunStatus
from trainscope.sweep.grid.report import GridReport, grid_report
from trainscope.sweep.grid.rerun import Action, kept_job, plan_job

JOB = ["model=mlp", "optimizer.lr=0.1"]


def leave_run(run_dir: Path, overrides: list[str], status: RunStatus | None, checkpoint: bool) -> None:
    """A run directory as a sweep job leaves it: its saved overrides, the event file every run opens first, its
    status (None: killed before it wrote metrics.json) and maybe a checkpoint."""
    (run_dir / SAVED_OVERRIDES).parent.mkdir(parents=True)
    (run_dir / SAVED_OVERRIDES).write_text("".join(f"- {item}\n" for item in overrides))
    (run_dir / f"{EVENT_FILE_PREFIX}.0.host").write_bytes(b"")
    if status is not None:
        (run_dir / METRICS_FILE).write_text(json.dumps({"status": str(status)}))
    if checkpoint:
        (run_dir / CHECKPOINT_DIR).mkdir()
        (run_dir / CHECKPOINT_DIR / LAST).write_bytes(b"")


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.STOPPED_EARLY, RunStatus.PRUNED])
def test_an_ended_run_of_the_same_job_is_kept_and_counted_as_succeeded(tmp_path: Path, status: RunStatus) -> None:
    run_dir = tmp_path / "0"
    leave_run(run_dir, JOB, status, checkpoint=True)
    planned = plan_job([*JOB, "hydra.sweep.subdir=0"], run_dir, rerun_failed=True)  # hydra.* keys are not saved
    assert (planned.action, planned.run_dir) == (Action.KEEP, run_dir)
    report = grid_report([kept_job(planned)], [planned])
    assert report == GridReport(succeeded=[run_dir], kept=1)
    assert report.line() == "multirun: 1 succeeded, 0 failed; 1 kept from before, 0 resumed"


@pytest.mark.parametrize("status", [None, RunStatus.INTERRUPTED, RunStatus.RUNNING])
def test_an_interrupted_run_with_a_checkpoint_resumes_in_place(tmp_path: Path, status: RunStatus | None) -> None:
    run_dir = tmp_path / "0"
    leave_run(run_dir, JOB, status, checkpoint=True)
    planned = plan_job(JOB, run_dir, rerun_failed=True)
    assert (planned.action, planned.run_dir) == (Action.RESUME, run_dir)
    assert planned.overrides == [*JOB, f"resume='{run_dir}'"]


@pytest.mark.parametrize(
    ("status", "checkpoint"),
    [(RunStatus.FAILED, True), (None, False)],
    ids=["failed", "killed_before_its_first_checkpoint"],
)
def test_a_failed_run_runs_again_in_the_next_free_directory(
    tmp_path: Path, status: RunStatus | None, checkpoint: bool
) -> None:
    run_dir = tmp_path / "0"
    leave_run(run_dir, JOB, status, checkpoint)
    planned = plan_job(JOB, run_dir, rerun_failed=True)
    assert (planned.action, planned.run_dir) == (Action.RUN, tmp_path / "0_2")
    assert planned.overrides == [*JOB, "hydra.sweep.subdir='0_2'"]


def test_the_last_attempt_is_the_jobs_state_and_rerun_failed_false_keeps_a_failure(tmp_path: Path) -> None:
    leave_run(tmp_path / "0", JOB, RunStatus.FAILED, checkpoint=False)
    leave_run(tmp_path / "0_2", JOB, RunStatus.INTERRUPTED, checkpoint=True)
    resumed = plan_job(JOB, tmp_path / "0", rerun_failed=True)
    assert (resumed.action, resumed.run_dir) == (Action.RESUME, tmp_path / "0_2")
    assert resumed.overrides == [*JOB, "hydra.sweep.subdir='0_2'", f"resume='{tmp_path / '0_2'}'"]

    (tmp_path / "1").mkdir()
    leave_run(tmp_path / "1" / "job", JOB, RunStatus.FAILED, checkpoint=True)
    kept = plan_job(JOB, tmp_path / "1" / "job", rerun_failed=False)
    assert (kept.action, kept.run_dir) == (Action.KEEP, tmp_path / "1" / "job")


@pytest.mark.parametrize("saved", [["model=cnn", "optimizer.lr=0.1"], None], ids=["other_overrides", "no_run_yet"])
def test_a_free_directory_or_another_jobs_run_is_left_to_the_run_directory_guard(
    tmp_path: Path, saved: list[str] | None
) -> None:
    run_dir = tmp_path / "0"
    if saved is not None:
        leave_run(run_dir, saved, RunStatus.COMPLETED, checkpoint=True)
    planned = plan_job(JOB, run_dir, rerun_failed=True)
    assert (planned.action, planned.run_dir, planned.overrides) == (Action.RUN, run_dir, JOB)
