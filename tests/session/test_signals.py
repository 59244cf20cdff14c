"""Ctrl-C and SIGTERM as a user meets them: the step finishes, a checkpoint is kept, the resume command
is printed, and the HParams tab shows the true status after the interruption and after the resumed run."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.plugins.hparams import api_pb2, metadata

from tests.helpers.cli import REPO_ROOT, cli_env, resume_cli, start_training, wait_for_checkpoint, wait_for_run_file
from tests.helpers.events import read_events, session_infos
from tests.helpers.tensorboard_server import metric_values, session_groups, start_tensorboard, wait_for
from trainscope.core.callback import Callback
from trainscope.core.run_dir import RunStatus
from trainscope.core.view import TrainerView

pytestmark = pytest.mark.slow  # every test here runs real processes for more than ~5 s

# Long enough (2 x 36 steps) that a signal sent at the first checkpoint (step 5) lands mid-epoch.
LONG = [
    "data=synthetic",
    "data.num_samples=1280",
    "data.batch_size=32",
    "model=mlp",
    "trainer.max_epochs=2",
    "trainer.test=false",
    "logging.log_every_n_steps=2",
    "logging.progress_bar=false",
    "callbacks.checkpoint.every_n_steps=5",
]
SHORT = ["data=synthetic", "data.num_samples=128", "data.batch_size=32", "model=mlp", "trainer.max_epochs=1"]


def session_end_status(run_dir: Path) -> int | None:
    accumulator = read_events(run_dir)
    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME).get(metadata.SESSION_END_INFO_TAG)
    return None if content is None else metadata.parse_session_end_info_plugin_data(content).status


def trial_states(run_dir: Path) -> list[float]:
    accumulator = read_events(run_dir)
    return [event.value for event in accumulator.Scalars("trial_state")]


def test_ctrl_c_saves_a_checkpoint_and_the_resumed_run_ends_with_one_true_status(
    tmp_path: Path, data_dir: Path
) -> None:
    output_root = tmp_path / "outputs"
    process = start_training(LONG, output_root, data_dir)
    run_dir = wait_for_checkpoint(output_root, process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)

    assert process.returncode == 130, output
    assert "Traceback" not in output
    resume_lines = [line for line in output.splitlines() if "resume with: " in line]
    assert resume_lines, output
    command = shlex.split(resume_lines[-1].split("resume with: ", 1)[1])
    assert command[:2] == ["python", "train.py"] and command[2] == f"resume={run_dir}"

    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "interrupted" and summary["reason"] == "interrupted by SIGINT"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["trainer"]["global_step"] == summary["global_step"]
    assert 0 < checkpoint["trainer"]["batch_in_epoch"] < 36, "stopped after a step, mid-epoch"

    # TensorBoard: trial_state 4 and no end info, so the session stays open ("Unknown") until resumed.
    assert trial_states(run_dir) == [5.0, 4.0]  # running (5) from its start, then interrupted (4)
    assert session_end_status(run_dir) is None
    url = start_tensorboard(output_root / "runs")
    session = wait_for(lambda: session_groups(url), what="the session")[0]["sessions"][0]
    assert session["status"] == "STATUS_UNKNOWN"
    assert metric_values(session)["trial_state"] == 4

    resumed = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=REPO_ROOT,
        env=cli_env(output_root, data_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
    assert session_end_status(run_dir) == api_pb2.STATUS_SUCCESS
    assert session_infos(run_dir, "_hparams_/session_start_info") == 1
    assert session_infos(run_dir, "_hparams_/session_end_info") == 1
    assert trial_states(run_dir)[-1] == 0.0

    def finished() -> dict | None:
        groups = session_groups(url)
        sessions = groups[0]["sessions"] if len(groups) == 1 else []
        return sessions[0] if sessions and sessions[0]["status"] != "STATUS_UNKNOWN" else None

    session = wait_for(finished, what="the resumed run's end info")
    assert session["status"] == "STATUS_SUCCESS"
    assert metric_values(session)["trial_state"] == 0
    assert metric_values(session)["train/epoch"] == 2


def test_sigterm_exits_143_with_a_checkpoint(tmp_path: Path, data_dir: Path) -> None:
    output_root = tmp_path / "outputs"
    process = start_training(LONG, output_root, data_dir)
    run_dir = wait_for_checkpoint(output_root, process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    assert "resume with: " in output
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "interrupted" and summary["reason"] == "interrupted by SIGTERM"


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path, data_dir: Path) -> None:
    output_root = tmp_path / "outputs"
    process = start_training(LONG, output_root, data_dir)
    run_dir = wait_for_checkpoint(output_root, process)
    process.send_signal(signal.SIGINT)
    seen = []
    while not any("stopping after the current step" in line for line in seen):  # the first one is taken
        line = process.stdout.readline() if process.stdout else ""
        assert line, "".join(seen)
        seen.append(line)
    process.send_signal(signal.SIGINT)  # while the run still finishes its step and writes the checkpoint
    output, _ = process.communicate(timeout=60)
    output = "".join(seen) + output
    assert process.returncode == 130, output
    assert "SIGINT again: exiting now" in output
    assert "Traceback" not in output
    torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)  # the last good checkpoint is intact


def test_sigterm_during_start_up_is_recorded_and_resumable(tmp_path: Path, data_dir: Path) -> None:
    """Sent while the run builds its data and model (torch not even imported yet): the run stops before its
    first step, says so, is recorded `interrupted` with a step-0 checkpoint, and `resume=` trains it fully."""
    output_root = tmp_path / "outputs"
    process = start_training(SHORT, output_root, data_dir)
    run_dir = wait_for_run_file(output_root, process, ".hydra/config.yaml", "its run directory")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    assert "Traceback" not in output
    assert f"interrupted by SIGTERM at step 0; checkpoint saved. resume with: python train.py resume={run_dir}" in (
        output
    )
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert (summary["status"], summary["reason"], summary["global_step"]) == (
        "interrupted",
        "interrupted by SIGTERM during start-up",
        0,
    )
    resumed = resume_cli(run_dir, data_dir)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 1 and "test/acc" in summary["test"]


class SigtermAtFitEnd(Callback):
    """Sends this process a SIGTERM when training ends (it arrives as the test phase begins), if the environment
    asks for it (the first run, not its resume)."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        if trainer.status == RunStatus.COMPLETED and os.environ.get("SIGTERM_AT_FIT_END"):
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_during_the_test_phase_cuts_it_and_resume_tests(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided (docs/run-directory.md): the test phase is cut at once, the run is `interrupted` (exit 143),
    training's checkpoint is kept, and `resume=` trains nothing more and runs the test phase."""
    output_root = tmp_path / "outputs"
    callback = f"+callbacks.sigterm._target_={__name__}.SigtermAtFitEnd"
    monkeypatch.setenv("SIGTERM_AT_FIT_END", "1")
    process = start_training([*SHORT, callback], output_root, data_dir)
    output, _ = process.communicate(timeout=120)
    monkeypatch.delenv("SIGTERM_AT_FIT_END")
    assert process.returncode == 143, output
    assert "Traceback" not in output and "test/acc" not in output
    (run_dir,) = (output_root / "runs").glob("*/*")
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "interrupted" and summary["test"] == {}, summary
    assert summary["reason"] == "interrupted by SIGTERM during the test phase"
    assert summary["epochs_run"] == 1

    resumed = resume_cli(run_dir, data_dir)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 1 and "test/acc" in summary["test"]
