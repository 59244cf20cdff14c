"""A disk that fills up under a run (a real tmpfs): one `error:` line, nothing written lost, and the same run
resumes once there is room again, with every TensorBoard point exactly once."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
from tensorboard.plugins.hparams import api_pb2, metadata

from tests.helpers.cli import (
    FULL,
    TINY,
    error_line,
    resume_cli,
    run_script,
    single_run_dir,
    start_training,
)
from tests.helpers.disk import fill, small_disk
from tests.helpers.events import points_per_tag, read_events
from trainscope.core.run_dir import RunStatus
from trainscope.tensorboard.hparams import TRIAL_STATES


@pytest.mark.slow
def test_disk_full_while_tensorboard_writes(
    tmp_path: Path, data_dir: Path, reference_points: dict[str, list[int]]
) -> None:
    with small_disk(tmp_path / "disk", 32 * 2**20) as disk:
        output_root = disk / "outputs"
        process = start_training(FULL, output_root, data_dir, stdout=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not list((output_root / "runs").glob("*/*/checkpoints/last.pt")):
            assert time.monotonic() < deadline and process.poll() is None, "no first checkpoint"
            time.sleep(0.001)
        filler = fill(disk)  # epoch 1 is checkpointed; epoch 2's TensorBoard points find no space
        output, _ = process.communicate(timeout=120)
        run_dir = single_run_dir(output_root)
        lines = [line for line in output.splitlines() if line.startswith(("error:", "Traceback"))]
        assert process.returncode == 2, output
        assert len(lines) == 1 and lines[0].startswith("error: disk full: could not write to"), output
        assert "Traceback" not in output and "Logging error" not in output, output
        assert f"resume with: python train.py resume={run_dir}" in lines[0]
        assert "metrics.json records the run as failed" in lines[0]  # the run's space reserve made room
        metrics_file = run_dir / "metrics.json"
        summary = json.loads(metrics_file.read_text())
        assert summary["status"] == "failed" and summary["reason"].startswith("disk full: could not write"), summary
        assert not list(run_dir.rglob("*.tmp")), "no half-written file left behind"
        checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
        assert checkpoint["trainer"]["epoch"] == 1
        # TensorBoard says failed too (through a new event file: the run's writer died of the full disk), and the
        # session stays open for the resume that the error line proposes (issue 29)
        events = read_events(run_dir)
        assert events.Scalars("trial_state")[-1].value == TRIAL_STATES[RunStatus.FAILED]
        assert metadata.SESSION_END_INFO_TAG not in events.PluginTagToContent(metadata.PLUGIN_NAME)

        filler.unlink()
        resumed = resume_cli(run_dir, data_dir)
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(metrics_file.read_text())["status"] == "completed"
        assert points_per_tag(run_dir) == reference_points
        events = read_events(run_dir)
        assert events.Scalars("trial_state")[-1].value == TRIAL_STATES[RunStatus.COMPLETED]
        end = events.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_END_INFO_TAG]
        assert metadata.parse_session_end_info_plugin_data(end).status == api_pb2.STATUS_SUCCESS
        assert not (run_dir / ".space_reserve").exists()


def test_disk_full_before_the_run_writes_its_saved_config(tmp_path: Path, data_dir: Path) -> None:
    with small_disk(tmp_path / "disk", 4 * 2**20) as disk:
        fill(disk)
        result = run_script("train.py", TINY, disk / "outputs", data_dir)
        assert result.returncode == 2
        line = error_line(result)
        assert "could not write" in line and ".hydra/ (No space left on device)" in line, line


@pytest.mark.slow
def test_disk_full_when_resuming_keeps_the_saved_config(finished_run: Path, tmp_path: Path, data_dir: Path) -> None:
    with small_disk(tmp_path / "disk", 16 * 2**20) as disk:
        run_dir = disk / finished_run.name
        shutil.copytree(finished_run, run_dir)
        before = {path: path.read_bytes() for path in (run_dir / ".hydra").iterdir()}
        last = (run_dir / "checkpoints" / "last.pt").read_bytes()
        # No byte free, then one page: room for the new config.yaml but not hydra.yaml (the case, where
        # config.yaml said max_epochs: 2 while the message said nothing had changed): all three files or none.
        for leave in (0, 4096):
            filler = fill(disk, leave)
            result = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
            assert result.returncode == 2
            assert "(No space left on device)" in error_line(result)
            assert {path: path.read_bytes() for path in (run_dir / ".hydra").iterdir()} == before, leave
            assert (run_dir / "checkpoints" / "last.pt").read_bytes() == last
            assert not list(run_dir.rglob("*.tmp")), "no half-written file left behind"
            filler.unlink()

        resumed = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2
