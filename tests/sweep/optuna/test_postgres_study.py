"""Sweeps on many machines sharing one study in a real PostgreSQL server (README "Scaling out").

Each "machine" is `python train.py -m ...` in its own process group, its own working directory and
output root, and its own UTS namespace, so it has its own host name: the study cannot tell it from a
process on another computer, and a dead worker is found by its missing heartbeats, as across machines.
All output roots lie under one folder, the "shared filesystem" that TensorBoard reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from tests.helpers.cli import REPO_ROOT, cli_env
from tests.helpers.postgres_server import PostgresServer, free_port, running_server
from trainscope.core.errors import ConfigError
from trainscope.sweep.optuna.study import claim_trial, count_trials, fail_abandoned_trials
from trainscope.trial.attributes import FAIL_REASON_ATTR, HOST_ATTR, RUN_DIR_ATTR
from trainscope.trial.database import DatabaseSettings
from trainscope.trial.storage import StorageError, open_storage

# Seconds, not minutes: a dead worker's trial is retried 5 s after its last heartbeat.
HEARTBEAT = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.heartbeat_grace_period=5"]
SEARCH = [
    "hparams_search=synthetic",
    "hydra/sweeper/pruner=none",
    "data.num_samples=128",
    "logging=minimal",
    *HEARTBEAT,
]

# A UTS namespace of its own, where socket.gethostname() is the machine's name; without root, inside a
# user namespace of its own too (unprivileged users may create both).
UNSHARE_UTS = ["unshare", "--uts"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--uts"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


class Machine:
    """`python train.py -m <args>` as if on its own computer named `name`, with outputs in `root`."""

    def __init__(self, name: str, root: Path, data_dir: Path, args: list[str]) -> None:
        self.name, self.root = name, root
        self.output_root = root / "outputs"
        root.mkdir(parents=True)
        self.log_path = root / "terminal.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [*UNSHARE_UTS, "sh", "-c", 'hostname "$0" && exec "$@"', name, sys.executable]
                + [str(REPO_ROOT / "train.py"), "-m", *args],
                cwd=root,
                env=cli_env(self.output_root, data_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its own process group, killed as a whole
            )

    def output(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout: float = 150) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not finish:\n{self.output()[-3000:]}") from None

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def run_dirs(self) -> list[Path]:
        events = self.output_root.glob("multirun/*/*/*/events.out.tfevents.*")
        return sorted(p.parent for p in events if p.parent.name[0].isdigit())  # not the sweep's `report` run


def start_machines(count: int, tmp_path: Path, data_dir: Path, args: list[str]) -> list[Machine]:
    return [Machine(f"machine-{i}", tmp_path / "shared" / f"machine-{i}", data_dir, args) for i in range(count)]


def finish(machines: list[Machine]) -> None:
    for machine in machines:
        code = machine.wait()
        assert code == 0, f"{machine.name} exited {code}:\n{machine.output()[-3000:]}"
        assert "Traceback" not in machine.output() and "Warning" not in machine.output(), machine.output()[-3000:]


def study_trials(url: str, name: str = "S") -> list[FrozenTrial]:
    """Every trial of the study, in number order."""
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage).trials
    finally:
        storage.engine.dispose()  # type: ignore[attr-defined]


def wait_for(condition: Callable[[], object], timeout: float, what: str, machines: list[Machine]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        crashed = [m for m in machines if m.process.poll() is not None]
        assert not crashed and time.monotonic() < deadline, f"waiting for {what}:\n" + "\n".join(
            f"--- {m.name}\n{m.output()[-2000:]}" for m in machines
        )
        time.sleep(0.2)


@pytest.mark.slow
def test_workers_starting_at_once_create_the_tables_once(postgres: PostgresServer) -> None:
    """Three processes opening a fresh database in the same instant (before: UniqueViolation in CREATE TABLE)."""
    url = postgres.create_database("fresh_tables")
    start_at = time.time() + 3  # after every interpreter has imported Optuna
    code = (
        "import sys, time; from trainscope.trial.storage import open_storage; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); open_storage(sys.argv[1]); print('opened')"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, url, str(start_at)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=60) for worker in workers]
    assert [(w.returncode, out.strip()) for w, (out, _) in zip(workers, outputs, strict=True)] == [(0, "opened")] * 3


@pytest.mark.slow
def test_three_machines_share_one_study(postgres: PostgresServer, tmp_path: Path, data_dir: Path) -> None:
    url = postgres.create_database("three_machines")
    args = [*SEARCH, "trainer.max_epochs=1", f"hydra.sweeper.storage={url}", "hydra.sweeper.study_name=S"]
    machines = start_machines(3, tmp_path, data_dir, [*args, "hydra.sweeper.n_trials=7"])
    finish(machines)

    trials = study_trials(url)  # claims are serialized by a database lock: no trial beyond n_trials
    assert [t.number for t in trials] == list(range(7))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for machine in machines:  # every machine worked, and each trial names its host and run dir
        mine = [t for t in trials if t.user_attrs[HOST_ATTR] == machine.name]
        assert mine, f"{machine.name} ran no trial"
        assert sorted(Path(t.user_attrs[RUN_DIR_ATTR]) for t in mine) == machine.run_dirs()
        assert f"[optuna] dashboard: optuna-dashboard {url.replace('postgresql://', 'postgresql+psycopg://')}" in (
            machine.output()
        )
        # Each machine waited for the others and reports the whole study.
        assert "optuna: 7 trials: 7 complete, 0 pruned, 0 failed" in machine.output().strip().splitlines()[-1]
    assert len({t.user_attrs[RUN_DIR_ATTR] for t in trials}) == 7

    # `tensorboard --logdir <shared folder>` finds the runs of every machine.
    multiplexer = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "shared"))
    multiplexer.Reload()
    run_dirs = {str(Path(run_dir).relative_to(tmp_path / "shared")) for run_dir in multiplexer.RunPaths().values()}
    found = {str(Path(t.user_attrs[RUN_DIR_ATTR]).relative_to(tmp_path / "shared")) for t in trials}
    assert found <= run_dirs
    for trial in trials:
        name = str(Path(trial.user_attrs[RUN_DIR_ATTR]).relative_to(tmp_path / "shared"))
        assert "val/acc_best" in multiplexer.GetAccumulator(name).Tags()["scalars"]


@pytest.mark.slow
def test_killed_machine_trial_is_retried_by_another(postgres: PostgresServer, tmp_path: Path, data_dir: Path) -> None:
    url = postgres.create_database("killed_machine")
    args = [*SEARCH, "trainer.max_epochs=3", f"hydra.sweeper.storage={url}", "hydra.sweeper.study_name=S"]
    machines = start_machines(3, tmp_path, data_dir, [*args, "hydra.sweeper.n_trials=5"])
    wait_for(lambda: any(m.run_dirs() for m in machines), 120, "a first run", machines)
    victim = next(m for m in machines if m.run_dirs())
    victim.kill()  # SIGKILL to its whole process group, in the middle of its trial
    survivors = [m for m in machines if m is not victim]
    (killed_run_dir,) = victim.run_dirs()
    finish(survivors)

    trials = study_trials(url)
    counts = count_trials(trials)
    killed_metrics = killed_run_dir / "metrics.json"
    if killed_metrics.is_file() and json.loads(killed_metrics.read_text()).get("status") == "completed":
        # The tiny run finished before SIGKILL reached it (seen under load): its result is recovered from its
        # run directory (issue 27 item 4), not retrained; there is nothing to retry.
        assert (counts.complete, counts.failed, counts.running, counts.waiting) == (5, 0, 0, 0), counts
        assert str(killed_run_dir) in {t.user_attrs[RUN_DIR_ATTR] for t in trials if t.state == TrialState.COMPLETE}
        return
    assert (counts.complete, counts.failed, counts.interrupted, counts.running, counts.waiting) == (5, 0, 1, 0, 0)
    (killed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert killed.user_attrs[HOST_ATTR] == victim.name
    assert killed.user_attrs[FAIL_REASON_ATTR].startswith(
        f"interrupted: its sweep process (pid {victim.process.pid} on {victim.name}) stopped sending heartbeats"
    )
    assert killed.user_attrs[RUN_DIR_ATTR] == str(killed_run_dir)  # findable although its worker died
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs[HOST_ATTR] in {m.name for m in survivors}
    assert [t.number for t in trials] == list(range(6))
    assert len({t.user_attrs[RUN_DIR_ATTR] for t in trials}) == 6  # the killed trial's run dir too
    for machine in survivors:
        last = machine.output().strip().splitlines()[-1]
        assert "optuna: 5 trials: 5 complete, 0 pruned, 0 failed (1 interrupted and retried)" in last


@pytest.mark.slow
def test_database_restart_mid_sweep_is_survived(postgres: PostgresServer, tmp_path: Path, data_dir: Path) -> None:
    url = postgres.create_database("restart")
    args = [*SEARCH, "trainer.max_epochs=3", f"hydra.sweeper.storage={url}", "hydra.sweeper.study_name=S"]
    machines = start_machines(2, tmp_path, data_dir, [*args, "hydra.sweeper.n_trials=4"])
    started = lambda: all("[optuna] dashboard:" in m.output() for m in machines) and any(m.run_dirs() for m in machines)  # noqa: E731
    wait_for(started, 120, "both machines connected and a trial running", machines)
    postgres.stop("fast")  # every connection is cut
    time.sleep(7)  # longer than the heartbeat grace period: no heartbeat could be recorded meanwhile
    postgres.start()
    finish(machines)

    for machine in machines:
        assert f"warning: lost the connection to Optuna storage '{url}'" in machine.output()
        assert f"[optuna] storage '{url}' reachable again after" in machine.output()
        assert "optuna: 4 trials: 4 complete, 0 pruned, 0 failed;" in machine.output().strip().splitlines()[-1]
    counts = count_trials(study_trials(url))
    assert (counts.complete, counts.interrupted) == (4, 0)  # no live trial was taken for dead


@pytest.mark.slow
def test_an_outage_does_not_make_live_trials_look_dead(postgres: PostgresServer) -> None:
    """No heartbeat can be recorded while the database is down: silence then is no evidence of death."""
    url = postgres.create_database("outage")
    settings = DatabaseSettings(heartbeat_interval=1, heartbeat_grace_period=2)
    owner, watcher = open_storage(url, settings), open_storage(url, settings)
    try:
        study = optuna.create_study(storage=owner, study_name="S")
        claim_trial(study, url, {}, 1, lambda _: optuna.samplers.RandomSampler())  # records its first heartbeat
        watching = optuna.load_study(storage=watcher, study_name="S")
        postgres.stop("fast")
        checked = threading.Thread(target=fail_abandoned_trials, args=(watching,))
        checked.start()  # waits for the database, as a worker claiming its next trial would
        time.sleep(4)  # twice the grace period
        postgres.start()
        checked.join(timeout=60)
        assert watching.trials[0].state == TrialState.RUNNING
        time.sleep(2.5)  # one grace period after the database came back, silence counts again
        fail_abandoned_trials(watching)
        assert watching.trials[0].state == TrialState.FAIL
    finally:
        owner.engine.dispose()  # type: ignore[attr-defined]
        watcher.engine.dispose()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_an_outage_longer_than_reconnect_timeout_is_one_error(postgres: PostgresServer) -> None:
    url = postgres.create_database("long_outage")
    storage = open_storage(url, DatabaseSettings(reconnect_timeout=2))
    try:
        postgres.stop("fast")
        with pytest.raises(StorageError, match=r"^lost the connection to Optuna storage '.*/long_outage' for \d+ s: "):
            storage.get_all_studies()
    finally:
        postgres.start()
        storage.engine.dispose()  # type: ignore[attr-defined]


def test_heartbeat_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="hydra.sweeper.heartbeat_interval must be a positive number"):
        DatabaseSettings(heartbeat_interval=0).check()
    with pytest.raises(ConfigError, match=r"heartbeat_grace_period \(10\) must be longer than .*interval \(30\)"):
        DatabaseSettings(heartbeat_grace_period=10).check()


@pytest.mark.slow
def test_unreachable_database_is_one_error_line(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://postgres:secret@127.0.0.1:{port}/nowhere"
    result = subprocess.run(
        [sys.executable, "train.py", "-m", *SEARCH, f"hydra.sweeper.storage={url}"],
        cwd=REPO_ROOT,
        env=cli_env(tmp_path / "outputs", data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot open Optuna storage 'postgresql://postgres:***@127.0.0.1:{port}/nowhere'")
    assert "Connection refused" in line and "check hydra.sweeper.storage" in line
