"""Watching the workers until the study is done: one rule, whichever way the workers run.

When a worker ends:

- stopped by SIGINT/SIGTERM: it saved and recorded its trial, and the sweep stops with that signal;
- on a user-facing error (exit code 2, a `TrainscopeError`): its log says why; it is not replaced;
- died (killed, crashed, its job lost): its running trial is failed as interrupted and queued again, once;
- in every case but a stop, while the study still needs trials another worker takes its place (at most
  `n_trials` times in all), as long as a worker still runs or the workers finished a trial since the last
  ones started. When none is left and none did, the sweep stops with one line instead of starting workers
  that cannot get anything done (a launcher that cannot run them, an app that crashes at import).

A second signal ends the workers at once: what ends then is no death. `WorkerPool` is the way they run:
our own processes with Hydra's `basic` launcher (`local.LocalWorkers`, each seen as it ends), or the jobs
of the configured launcher (`launcher_jobs.LauncherWorkers`, a batch seen when it returns).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from optuna.trial import FrozenTrial, TrialState

from trainscope.core.errors import ConfigError
from trainscope.sweep.optuna.messages import say
from trainscope.sweep.optuna.session import SweepSession
from trainscope.sweep.optuna.signals import forwarding_signals
from trainscope.sweep.optuna.study import is_interrupted
from trainscope.trial.attributes import OWNER_ATTR


@dataclass(frozen=True)
class WorkerEnd:
    """How one worker ended (at most one of `signal_number`, `error`, `death` is set; none: it finished)."""

    index: int
    owner: dict[str, Any] | None = None  # its host and pid, as its trials name their owner (None: unknown)
    signal_number: int | None = None  # stopped by this signal, its trial saved and recorded
    error: bool = False  # a user-facing error, explained in its log
    death: str | None = None  # how it died: "was killed by SIGKILL", "exited with code 1", ...


class WorkerPool(Protocol):
    """A way to run workers; `supervise` decides when to start one."""

    def start(self, index: int) -> None:
        """Start worker `index` (a launcher starts it with the next batch)."""

    def started(self, count: int) -> str:
        """What to say once the first `count` workers are started."""

    def running(self) -> bool:
        """Whether a worker runs, or is about to start."""

    def wait(self) -> list[WorkerEnd]:
        """The workers that ended since the last call (a short wait may return none)."""

    def forward(self, signum: int) -> None:
        """Pass a signal on to the running workers."""

    def abandon(self) -> None:
        """The sweep itself failed: end the workers it owns (a launcher's jobs are the launcher's to end)."""

    def log_of(self, index: int) -> Path:
        """Where worker `index` logs."""

    def close(self) -> None:
        """Release what the pool holds once every worker has ended."""


def supervise(pool: WorkerPool, session: SweepSession, workers: int) -> int | None:
    """Start `workers` workers and watch them until all have ended; returns the signal that stopped the sweep."""
    return _Supervision(pool, session).run(workers)


class _Supervision:
    """One run of `supervise`: the workers started so far, the replacements, the signal that stopped them."""

    def __init__(self, pool: WorkerPool, session: SweepSession) -> None:
        self.pool, self.session = pool, session
        self.next_index = 0
        self.replacements = 0
        self.finished_at_last_start = session.finished_trials()
        self.stopped_by: int | None = None
        self.last_problem = ""

    def run(self, workers: int) -> int | None:
        with forwarding_signals(self.pool.forward) as seen:
            try:
                for _ in range(workers):
                    self._start()
                say(self.pool.started(workers))
                while self.pool.running():
                    for end in self.pool.wait():
                        self._ended(end, stopping=bool(seen) or self.stopped_by is not None)
            except BaseException:
                self.pool.abandon()
                raise
            finally:
                self.pool.close()
        if seen:
            return seen[0]
        if self.stopped_by is None and self.session.needs_trials() and not self._made_progress():
            raise ConfigError(
                "the sweep's workers ended without finishing a trial since the last ones started "
                f"({self.last_problem or 'no error'}); check the launcher's settings and the workers' logs, then "
                "rerun the same command to continue the study"
            )
        return self.stopped_by

    def _ended(self, end: WorkerEnd, stopping: bool) -> None:
        log = self.pool.log_of(end.index)
        if end.signal_number is not None:
            self.stopped_by = self.stopped_by or end.signal_number
            return
        if end.error:
            self.last_problem = f"worker {end.index} stopped with an error"
            say(f"{self.last_problem}; see {log}")
            return
        if stopping:  # a second signal ended it at once, or the sweep is stopping: no replacement
            return
        if end.death is not None:
            self.last_problem = f"worker {end.index} {end.death}"
            say(f"{self.last_problem}; see {log}")
            for trial in self._retried_trials_of(end):
                say(f"trial {trial.number} of worker {end.index} marked FAIL (interrupted) and retried once")
        if self._may_replace():
            index = self._start()
            say(f"worker {index} started in place of worker {end.index}")

    def _retried_trials_of(self, end: WorkerEnd) -> list[FrozenTrial]:
        """The dead worker's trials, failed as interrupted and queued again (now, or already by another worker)."""
        failed_now = self.session.fail_abandoned()
        if end.owner is None:
            return failed_now
        return [
            trial
            for trial in self.session.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if is_interrupted(trial) and _same_process(trial.system_attrs.get(OWNER_ATTR), end.owner)
        ]

    def _may_replace(self) -> bool:
        if self.replacements >= self.session.plan.n_trials or not self.session.needs_trials():
            return False
        if self.pool.running() or self._made_progress():
            self.replacements += 1
            return True
        return False

    def _made_progress(self) -> bool:
        return self.session.finished_trials() > self.finished_at_last_start

    def _start(self) -> int:
        index, self.next_index = self.next_index, self.next_index + 1
        self.finished_at_last_start = self.session.finished_trials()
        self.pool.start(index)
        return index


def _same_process(owner: Any, identity: dict[str, Any]) -> bool:
    """Whether a trial's recorded owner is the process `identity` names (same host when both know it)."""
    if not isinstance(owner, dict) or owner.get("pid") != identity.get("pid"):
        return False
    return owner.get("host") == identity.get("host") or None in (owner.get("host"), identity.get("host"))
