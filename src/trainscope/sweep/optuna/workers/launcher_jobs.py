"""Worker jobs placed by a Hydra launcher (`hydra/launcher=joblib`, `submitit_local`, `submitit_slurm`, ...).

The sweeper sets up a launcher whose task function is a `TrialWorker`; `LauncherWorkers` hands it the workers
`supervise` starts, one batch at a time, and reports how each job of the batch ended once the launcher returns.
A launcher says nothing while its batch runs, so meanwhile the study is watched: a dead worker's trial is
failed and queued again as soon as that is noticed, and a live worker picks it up. Signals reach the workers
on this machine through the host and pid each one writes to its `worker.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher

from trainscope.adapters.hydra_private import job_error
from trainscope.core.errors import TrainscopeError, first_line
from trainscope.sweep.optuna.plan import SweepPlan
from trainscope.sweep.optuna.session import SweepSession
from trainscope.sweep.optuna.workers.supervision import WorkerEnd
from trainscope.sweep.optuna.workers.worker import WORKER_DIR_PREFIX, WORKER_FILE, WorkerReport, worker_dir

WATCH_SECONDS = 1.0


class LauncherWorkers:
    """The workers `supervise` starts, run as jobs of `launcher` (whose task function is a `TrialWorker`)."""

    def __init__(self, session: SweepSession, launcher: Launcher) -> None:
        self.session, self.launcher = session, launcher
        self.queued: list[int] = []

    def start(self, index: int) -> None:
        self.queued.append(index)

    def started(self, count: int) -> str:
        return f"{count} worker jobs handed to the launcher (logs: {self.session.plan.sweep_dir}/{WORKER_DIR_PREFIX}*)"

    def running(self) -> bool:
        return bool(self.queued)

    def wait(self) -> list[WorkerEnd]:
        """Launch the queued workers as one batch of jobs and wait for the launcher to return it."""
        batch, self.queued = self.queued, []
        for index in batch:  # a worker.json left by an earlier sweep in this directory names another process
            (worker_dir(self.session.plan.sweep_dir, index) / WORKER_FILE).unlink(missing_ok=True)
        overrides = [worker_job_overrides(self.session.plan, index) for index in batch]
        with watching_for_dead_workers(self.session):
            try:
                jobs: Sequence[JobReturn] = self.launcher.launch(overrides, initial_job_idx=batch[0])
            except Exception as error:  # noqa: BLE001 - e.g. joblib's TerminatedWorkerError: the batch is lost
                lost = f"ended abnormally: {type(error).__name__}: {first_line(error)}"
                return [WorkerEnd(index, self._owner(index), death=lost) for index in batch]
        return [self._end_of(index, job) for index, job in zip(batch, jobs, strict=True)]

    def forward(self, signum: int) -> None:
        signal_workers_on_this_host(self.session.plan.sweep_dir, signum)

    def abandon(self) -> None:
        pass  # the launcher owns its jobs and ends them as it does

    def log_of(self, index: int) -> Path:
        return worker_dir(self.session.plan.sweep_dir, index)

    def close(self) -> None:
        pass

    def _end_of(self, index: int, job: JobReturn) -> WorkerEnd:
        owner = self._owner(index)
        if job.status == JobStatus.COMPLETED:
            report = job.return_value
            stopped_by = report.signal_number if isinstance(report, WorkerReport) else None
            return WorkerEnd(index, owner, signal_number=stopped_by)
        error = job_error(job)  # reading `return_value` of a failed job re-raises its exception
        if isinstance(error, TrainscopeError):  # e.g. the storage gone for longer than reconnect_timeout
            return WorkerEnd(index, owner, error=True)
        return WorkerEnd(index, owner, death=f"ended abnormally: {type(error).__name__}: {first_line(error)}")

    def _owner(self, index: int) -> dict[str, Any] | None:
        """The worker's host and pid from its `worker.json`; None when it never got to write it."""
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads((worker_dir(self.session.plan.sweep_dir, index) / WORKER_FILE).read_text()))
        return None


def worker_job_overrides(plan: SweepPlan, index: int) -> list[str]:
    """A worker job's overrides: the sweep's fixed ones (which may pick the sweeper, e.g. `hparams_search=`,
    so the job's config composes like the sweep's), its own directory (its log and `worker.json`) and no
    `.hydra/` copy (it is no run)."""
    from trainscope.config.overrides import hydra_quote

    return [
        *plan.space.fixed_overrides.values(),
        f"hydra.sweep.dir={hydra_quote(str(plan.sweep_dir))}",
        f"hydra.sweep.subdir={WORKER_DIR_PREFIX}{index}",
        "hydra.output_subdir=null",
    ]


def signal_workers_on_this_host(sweep_dir: Path, signum: int) -> None:
    """Send `signum` to this sweep's workers on this machine that run in another process group.

    Workers in the sweep's own process group (joblib's pool) already got a signal sent to the group (a
    terminal's Ctrl-C, `kill -TERM -<pgid>`, systemd, `scancel`); sending it again would make their
    training runs exit at once, without a checkpoint.
    """
    host = socket.gethostname()
    for path in sweep_dir.glob(f"{WORKER_DIR_PREFIX}*/{WORKER_FILE}"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            identity = json.loads(path.read_text())
            pid = int(identity["pid"])
            if identity["host"] == host and pid != os.getpid() and os.getpgid(pid) != os.getpgrp():
                os.kill(pid, signum)


@contextlib.contextmanager
def watching_for_dead_workers(session: SweepSession) -> Iterator[None]:
    """While a batch runs, fail (and queue again) the trials of a worker that died, as soon as it is noticed."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(WATCH_SECONDS):
            with contextlib.suppress(Exception):  # a storage hiccup here must not end the sweep
                session.fail_abandoned()

    thread = threading.Thread(target=watch, name="optuna-dead-worker-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
