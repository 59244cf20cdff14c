"""Worker jobs placed by a Hydra launcher (`hydra/launcher=joblib`, `submitit_local`, `submitit_slurm`, ...).

The sweeper sets up a launcher whose task function is a `TrialWorker` and launches `n_jobs` worker jobs in
one batch; each pulls trials until the study is done (`trainscope.sweep.optuna.workers.worker`). While they run, a dead
worker's trial is failed and retried as soon as it is noticed, and signals are passed on to the workers.
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

from trainscope.core.errors import ConfigError, first_line
from trainscope.sweep.optuna.session import say
from trainscope.sweep.optuna.workers.worker import WORKER_DIR_PREFIX, WORKER_FILE, WorkerReport, forwarding_signals
from trainscope.trial.attributes import OWNER_ATTR


def worker_job_overrides(sweep: Any, index: int) -> list[str]:
    """A worker job's overrides: the sweep's fixed ones (which may pick the sweeper, e.g. `hparams_search=`,
    so the job's config composes like the sweep's), its own directory (its log and `worker.json`) and no
    `.hydra/` copy (it is no run)."""
    from trainscope.config.overrides import hydra_quote

    return [
        *sweep.space.fixed_overrides.values(),
        f"hydra.sweep.dir={hydra_quote(str(sweep.sweep_dir))}",
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


def run_worker_jobs(sweep: Any, launcher: Launcher) -> int | None:
    """Launch `n_jobs` worker jobs through the configured Hydra launcher (set up with a `TrialWorker` as its
    task function) and wait for them.

    Returns the signal that stopped the sweep, or None. While they run, a dead worker's trial is
    reported (and retried once) as soon as it is noticed; when the batch returns with trials still to
    run (a worker died) and it made progress, a new batch of workers is launched.
    """
    with forwarding_signals(lambda signum: signal_workers_on_this_host(sweep.sweep_dir, signum)) as seen:
        while True:
            finished_before = sweep.finished_trials()
            overrides = [worker_job_overrides(sweep, index) for index in range(sweep.workers_wanted())]
            problems: list[str] = []
            with watching_for_dead_workers(sweep):
                try:
                    jobs: Sequence[JobReturn] = launcher.launch(overrides, initial_job_idx=0)
                except Exception as error:  # noqa: BLE001 - e.g. joblib's TerminatedWorkerError
                    problems.append(f"{type(error).__name__}: {first_line(error)}")
                    jobs = []
            signals = [report_worker_job(job, problems) for job in jobs]
            for problem in problems:
                say(f"a worker job ended abnormally: {problem}")
            stopped = seen or [s for s in signals if s is not None]
            if stopped:
                return stopped[0]
            fail_abandoned_trials_of_dead_workers(sweep)  # e.g. joblib ends its whole pool when one worker dies
            if not sweep.needs_trials():
                return None
            if sweep.finished_trials() == finished_before:
                why = problems[0] if problems else "no error"
                raise ConfigError(
                    f"the sweep's worker jobs ended without finishing a trial ({why}); "
                    "check the launcher's settings and logs"
                )
            say("the study still needs trials after its workers ended: launching new worker jobs")


def report_worker_job(job: JobReturn, problems: list[str]) -> int | None:
    """The signal that stopped a worker job, if one did; a failed job's error goes into `problems`."""
    if job.status != JobStatus.COMPLETED:
        error = job._return_value  # noqa: SLF001 - `return_value` re-raises a failed job's exception
        problems.append(f"{type(error).__name__}: {first_line(error)}")
        return None
    report = job.return_value
    return report.signal_number if isinstance(report, WorkerReport) else None


def fail_abandoned_trials_of_dead_workers(sweep: Any) -> None:
    """Fail (and retry once) the running trials whose worker died, saying so."""
    for trial in sweep.fail_abandoned():
        owner = trial.system_attrs.get(OWNER_ATTR) or {}
        say(
            f"the worker of trial {trial.number} (pid {owner.get('pid')} on {owner.get('host')}) died: "
            "trial marked FAIL (interrupted) and retried once"
        )


@contextlib.contextmanager
def watching_for_dead_workers(sweep: Any, interval: float = 1.0) -> Iterator[None]:
    """While workers run, fail (and retry once) the trials of a worker that died, as soon as it is noticed."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a storage hiccup here must not end the sweep
                fail_abandoned_trials_of_dead_workers(sweep)

    thread = threading.Thread(target=watch, name="optuna-dead-worker-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
