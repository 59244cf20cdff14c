"""`logging.serve=true` and `trainscope-board`: a real TensorBoard over the run's folder, reused, stopped, and a
port in use as one line."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import TINY, run_script, start_training
from tests.helpers.in_process import train_in_process
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import RunStatus
from trainscope.tensorboard.serve import LOG_FILE, RECORD_FILE, read_record, running_board, serve

BOARD = [sys.executable, "-c", "from trainscope.cli.board import entrypoint; entrypoint()"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.slow
def test_a_run_with_serve_prints_a_url_that_answers_while_it_trains_and_stops_the_server_after(
    tmp_path: Path, data_dir: Path
) -> None:
    # long enough that the run still trains when the test asks the server (a few seconds of steps)
    args = [*TINY, "data.num_samples=1024", "logging.serve=true"]
    run = start_training(args, tmp_path / "outputs", data_dir)
    assert run.stdout is not None
    seen: list[str] = []
    for line in run.stdout:
        seen.append(line)
        if "tensorboard: http://127.0.0.1:" in line:
            break
    else:
        pytest.fail(f"no URL printed:\n{''.join(seen)}")
    url = line.split("tensorboard: ", 1)[1].split()[0]
    with urllib.request.urlopen(f"{url}data/runs", timeout=10) as response:
        assert isinstance(json.loads(response.read()), list)
    (run_dir,) = (tmp_path / "outputs" / "runs").glob("*/*")
    record = read_record(run_dir.resolve())
    assert record is not None and record.url == url
    assert run.poll() is None, "the run ended before the server was asked: make it longer"
    rest, _ = run.communicate(timeout=300)
    assert run.returncode == 0, rest
    assert "stops with the run" in line
    assert not _alive(record.pid)
    assert not (run_dir / RECORD_FILE).exists()


@pytest.mark.slow
def test_a_sweeps_trials_share_one_server_over_the_sweep_folder_that_stays_after_the_sweep(
    tmp_path: Path, data_dir: Path
) -> None:
    shown = run_script("train.py", ["-m", *TINY, "trainer.max_epochs=1,2", "logging.serve=true"], tmp_path, data_dir)
    (record_file,) = (tmp_path / "multirun").glob(f"*/*/{RECORD_FILE}")
    record = running_board(record_file.parent)
    assert record is not None, shown.stdout + shown.stderr
    try:
        assert shown.returncode == 0, shown.stderr
        lines = [line for line in (shown.stdout + shown.stderr).splitlines() if "tensorboard: http" in line]
        assert len(lines) == 2, lines
        assert f"tensorboard: {record.url}  (stays after the run: stop it with kill {record.pid}" in lines[0]
        assert f"tensorboard: {record.url}  (already running (pid {record.pid})" in lines[1]
    finally:
        os.killpg(record.pid, signal.SIGTERM)


@pytest.mark.slow
def test_the_board_serves_in_the_foreground_until_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}  # SIGABRT prints every thread's stack (a hang's diagnosis)
    board = subprocess.Popen(
        [*BOARD, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as a terminal starts it: Ctrl-C on. A suite started in the background (`cmd &` without job control)
        # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt (seen in two clean-clone CIs).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert board.stdout is not None
        line = board.stdout.readline()
        assert line.startswith("tensorboard: http://127.0.0.1:") and "Ctrl-C stops it" in line, line
        with urllib.request.urlopen(f"{line.split()[1]}data/runs", timeout=10) as response:
            assert isinstance(json.loads(response.read()), list)
        record = running_board(tmp_path.resolve())
        assert record is not None and record.url == line.split()[1]
    finally:
        board.send_signal(signal.SIGINT)
        try:
            _, errors = board.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # show where it hung
            board.send_signal(signal.SIGABRT)
            _, errors = board.communicate(timeout=30)
            log = (tmp_path / LOG_FILE).read_text(errors="replace")[-2000:] if (tmp_path / LOG_FILE).exists() else ""
            pytest.fail(f"trainscope-board did not end 60 s after Ctrl-C; its stderr:\n{errors}\nserver log:\n{log}")
    assert board.returncode == 0, errors
    assert not _alive(record.pid)
    assert not (tmp_path / RECORD_FILE).exists()


@pytest.mark.slow
def test_a_second_start_over_the_same_folder_reuses_the_server(tmp_path: Path) -> None:
    board = serve(tmp_path)
    try:
        again = serve(tmp_path)
        assert (again.pid, again.url, again.started) == (board.pid, board.url, False)
        shown = subprocess.run([*BOARD, str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert f"tensorboard: {board.url}  (already running, pid {board.pid}" in shown.stdout
        assert running_board(tmp_path.resolve()) == again
    finally:
        board.stop()
    assert not _alive(board.pid)
    assert running_board(tmp_path.resolve()) is None


def test_a_port_in_use_is_one_line(tmp_path: Path, taken_port: int) -> None:
    shown = subprocess.run([*BOARD, str(tmp_path), "--port", str(taken_port)], capture_output=True, text=True)
    assert shown.returncode == 2
    assert shown.stderr.splitlines() == [
        f"error: port {taken_port} is in use by another program; pick another (logging.serve_port=<port>, "
        "trainscope-board --port <port>) or 0 for any free port"
    ]
    assert not (tmp_path / RECORD_FILE).exists()


@pytest.mark.slow
def test_a_run_whose_port_is_in_use_warns_and_trains(
    tmp_path: Path, data_dir: Path, taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    overrides = ["data=synthetic", "data.num_samples=64", "model=mlp", "trainer.max_epochs=1"]
    with caplog.at_level(logging.WARNING):
        result = train_in_process(
            tmp_path / "run", data_dir, *overrides, "logging.serve=true", f"logging.serve_port={taken_port}"
        )
    assert result.status == RunStatus.COMPLETED
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any(f"tensorboard not started: port {taken_port} is in use" in message for message in warnings), warnings


@pytest.mark.parametrize(
    "record",
    [
        "not json",
        '["pid", 1]',
        '{"pid": "1; rm -rf ~", "port": 6006, "logdir": "LOGDIR"}',
        '{"pid": true, "port": 6006, "logdir": "LOGDIR"}',
        '{"pid": 4242, "port": 70000, "logdir": "LOGDIR"}',
        '{"pid": 4242, "port": 6006, "logdir": "/somewhere/else"}',
    ],
)
def test_a_malformed_record_is_no_server(tmp_path: Path, record: str) -> None:
    (tmp_path / RECORD_FILE).write_text(record.replace("LOGDIR", str(tmp_path)), encoding="utf-8")
    assert read_record(tmp_path) is None
    assert running_board(tmp_path) is None


def test_a_record_whose_port_does_not_serve_the_folder_is_no_server(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:  # bound, not listening: connection refused
        closed.bind(("127.0.0.1", 0))
        record = {"pid": os.getpid(), "port": closed.getsockname()[1], "logdir": str(tmp_path)}  # an alive pid
        (tmp_path / RECORD_FILE).write_text(json.dumps(record), encoding="utf-8")
        assert read_record(tmp_path) is not None
        assert running_board(tmp_path) is None


def test_a_folder_that_cannot_hold_the_record_is_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^cannot start tensorboard over .*notes\.txt \(Not a directory\); run it"):
        serve(not_a_folder)
