"""Study bookkeeping shared by every process working on one study.

Several sweeps (a resumed one, hand-started cooperating ones, the sweeper's own worker processes) can run
against one storage. They agree through the storage alone:

- each trial records its owner process (host, pid, process start time) when it is claimed;
- a RUNNING trial whose owner process is gone was abandoned by a killed sweep: it is marked FAIL
  ("interrupted", not counted in `n_trials`) and its configuration is queued again, once;
- a trial is claimed only while the study has fewer than `n_trials` trials that count, so the
  study ends with exactly `n_trials` of them (complete, pruned, or failed by their own fault).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, Trial, TrialState

from trainscope.adapters.optuna_private import is_heartbeat_enabled, stale_trial_ids, study_id, study_storage, trial_id
from trainscope.core.run_dir import RunStatus, read_metrics
from trainscope.sweep.optuna.messages import say
from trainscope.trial.attributes import (
    FAIL_REASON_ATTR,
    HOST_ATTR,
    INTERRUPTED_ATTR,
    OWNER_ATTR,
    RUN_DIR_ATTR,
    STATUS_ATTR,
    SURPLUS_ATTR,
)
from trainscope.trial.channel import recorded_trial
from trainscope.trial.storage import exclusive, has_database_lock, is_rdb_url


def process_identity() -> dict[str, Any]:
    """Who owns a trial: enough to tell later, on this host, whether that process still runs.

    `started` is for people (ISO-8601 UTC); `start_ticks` (the kernel's start time of the pid) is what tells a
    reused pid from the owner.
    """
    pid = os.getpid()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    return {"host": socket.gethostname(), "pid": pid, "started": started, "start_ticks": _process_start_ticks(pid)}


def _process_start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (Linux), so a reused pid is not mistaken."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent has not collected it yet
        return -1
    return int(fields[19])


def owner_is_gone(owner: Any) -> bool:
    """True when the owner ran on this host and is no longer running (other hosts: the RDB heartbeat)."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = int(owner.get("pid", -1))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    started = _process_start_ticks(pid)
    if started == -1:
        return True
    recorded = owner.get("start_ticks", owner.get("started"))  # `started` held the ticks in older studies
    return isinstance(recorded, int) and started is not None and started != recorded


def is_interrupted(trial: FrozenTrial) -> bool:
    """A FAIL that is not the trial's fault: its sweep was killed, or the heartbeat stopped."""
    if trial.state != TrialState.FAIL or trial.system_attrs.get(SURPLUS_ATTR):
        return False
    return bool(trial.system_attrs.get(INTERRUPTED_ATTR)) or FAIL_REASON_ATTR not in trial.user_attrs


def is_surplus(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and bool(trial.system_attrs.get(SURPLUS_ATTR))


def is_failure(trial: FrozenTrial) -> bool:
    """A trial that failed by its own fault (raised, NaN objective, stopped by the health checks)."""
    return trial.state == TrialState.FAIL and not is_interrupted(trial) and not is_surplus(trial)


def trials_counted(trials: Sequence[FrozenTrial]) -> int:
    """How many of `trials` count in `n_trials` (finished ones and those running now)."""
    return sum(counts_toward_budget(trial) for trial in trials)


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Finished trials that count in `n_trials`, plus those running now."""
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) or is_failure(trial)


@dataclass(frozen=True)
class TrialCounts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    interrupted: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        """Trials that count in `n_trials` and are done."""
        return self.complete + self.pruned + self.failed


def count_trials(trials: Sequence[FrozenTrial]) -> TrialCounts:
    return TrialCounts(
        complete=sum(t.state == TrialState.COMPLETE for t in trials),
        pruned=sum(t.state == TrialState.PRUNED for t in trials),
        failed=sum(is_failure(t) for t in trials),
        interrupted=sum(is_interrupted(t) for t in trials),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        waiting=sum(t.state == TrialState.WAITING for t in trials),
    )


@contextlib.contextmanager
def claim_lock(storage_spec: str, storage: BaseStorage) -> Iterator[None]:
    """Serialize "count, then ask" between processes sharing a journal file or a database.

    An flock is released by the kernel when its process dies, a database lock by the server when the
    connection drops, so a killed sweep never leaves it held. SQLite has no such lock: see `claim_trial`.
    """
    if is_rdb_url(storage_spec):
        with exclusive(storage, "claim"):
            yield
        return
    lock_path = f"{storage_spec}.claim.lock"
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def claims_serialized(storage_spec: str, storage: BaseStorage) -> bool:
    """Whether `claim_lock` really serializes claims: a journal file's flock, a PostgreSQL/MySQL lock; not
    SQLite, where two processes may ask at once (`claim_trial`)."""
    return not is_rdb_url(storage_spec) or has_database_lock(storage)


def trials_running_elsewhere(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials of other processes: each ends, or its worker died and it is retried."""
    me = process_identity()
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.system_attrs.get(OWNER_ATTR) != me
    ]


def set_trial_system_attr(study: optuna.Study, trial_id: int, key: str, value: Any) -> None:
    study_storage(study).set_trial_system_attr(trial_id, key, value)


def fail_as_interrupted(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Mark a RUNNING trial FAIL as interrupted and queue its configuration again, once.

    Returns False when another process finished it first.
    """
    storage = study_storage(study)
    snapshot = trial  # taken before labelling, so the retry does not inherit the labels
    try:
        storage.set_trial_user_attr(trial_id(trial), FAIL_REASON_ATTR, reason)
        storage.set_trial_system_attr(trial_id(trial), INTERRUPTED_ATTR, True)
        if not storage.set_trial_state_values(trial_id(trial), TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=1)(study, snapshot)
    return True


def stale_trials(study: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials whose last heartbeat is older than the grace period (database storages only).

    Optuna's own `fail_stale_trials` fails them without a word; asking first lets the study say why.
    """
    storage = study_storage(study)
    if not is_heartbeat_enabled(storage):
        return []
    stale_ids = stale_trial_ids(storage, study_id(study))
    return [storage.get_trial(trial_id) for trial_id in stale_ids]


def fail_abandoned_trials(study: optuna.Study, *, claims_held: bool = False) -> list[FrozenTrial]:
    """Fail (and retry once) the RUNNING trials whose sweep process died; returns them.

    `claims_held`: the caller holds a claim lock that serializes claims (`claims_serialized`). Then a RUNNING
    trial with no owner recorded is abandoned too: a claim asks the trial and records its owner under that
    lock, so no claim is half done; the owner's record was lost (a full disk, a torn journal record), its
    process died with it, and without this rule no process would ever fail it (nor end the study).
    """
    abandoned = []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running if claims_held else []:
        if OWNER_ATTR in trial.system_attrs:
            continue
        reason = (
            "interrupted: it was claimed but its owner was never recorded (a full disk or a crash while the "
            "study was written), so its process is gone; its configuration is retried once as a new trial"
        )
        if fail_as_interrupted(study, trial, reason):
            say(f"trial {trial.number} was claimed but its owner was never recorded: marked FAIL, retried once")
            abandoned.append(trial)
    for trial in stale_trials(study):  # owners on any host
        owner = trial.system_attrs.get(OWNER_ATTR) or {}
        reason = (
            f"interrupted: its sweep process (pid {owner.get('pid')} on {owner.get('host')}) stopped sending "
            "heartbeats; its configuration is retried once as a new trial"
        )
        if not complete_from_run_dir(study, trial) and fail_as_interrupted(study, trial, reason):
            abandoned.append(trial)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.system_attrs.get(OWNER_ATTR)
        if not owner_is_gone(owner):
            continue
        reason = (
            f"interrupted: its sweep process (pid {owner['pid']} on {owner['host']}) died while it ran; "
            "its configuration is retried once as a new trial"
        )
        if not complete_from_run_dir(study, trial) and fail_as_interrupted(study, trial, reason):
            abandoned.append(trial)
    return abandoned


def complete_from_run_dir(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Record an abandoned trial COMPLETE from its run directory when its run finished; whether it did.

    The run may have finished and only its record been lost: the sweep died on a full disk before it told the
    study, or the journal's last record (the COMPLETE) was torn and cut off. Its `metrics.json` then holds the
    result, so the trial is not thrown away and trained again. The run directory is untrusted input: it must
    be this trial's (its `.hydra/hydra.yaml` names this study and trial number), say `completed` or
    `stopped_early`, optimize the study's metrics, and hold a finite number for each.
    """
    values = _finished_run_values(study, trial)
    if values is None:
        return False
    storage = study_storage(study)
    try:
        storage.set_trial_user_attr(trial_id(trial), STATUS_ATTR, RunStatus.COMPLETED.value)
        if not storage.set_trial_state_values(trial_id(trial), TrialState.COMPLETE, values):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    shown = ", ".join(f"{name}={value:.6g}" for name, value in zip(study.metric_names or [], values, strict=True))
    say(
        f"trial {trial.number} had finished but its result was not recorded: COMPLETE from its run directory, "
        f"{shown} ({trial.user_attrs[RUN_DIR_ATTR]})"
    )
    return True


def _finished_run_values(study: optuna.Study, trial: FrozenTrial) -> list[float] | None:
    run_dir = trial.user_attrs.get(RUN_DIR_ATTR)
    names = study.metric_names
    if not isinstance(run_dir, str) or not names:
        return None
    address = recorded_trial(Path(run_dir))
    if address is None or (address.study_name, address.number) != (study.study_name, trial.number):
        return None
    try:
        metrics = read_metrics(Path(run_dir))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(metrics, dict) or metrics.get("status") not in (RunStatus.COMPLETED, RunStatus.STOPPED_EARLY):
        return None
    optimized = metrics.get("optimized_metric")
    final = metrics.get("final")
    if (optimized if isinstance(optimized, list) else [optimized]) != list(names) or not isinstance(final, dict):
        return None
    values = [final.get(name) for name in names]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return [float(value) for value in values]


def claim_trial(
    study: optuna.Study,
    storage_spec: str,
    distributions: dict[str, BaseDistribution],
    n_trials: int,
    make_sampler: Callable[[int], BaseSampler],
) -> Trial | None:
    """Ask the next trial if the study still needs one; None once `n_trials` trials count.

    The sampler is rebuilt from the seed and the number of trials so far, so a resumed or cooperating
    process does not replay the random proposals another one already made. A trial that another process
    finished between the ask and the owner's record (SQLite has no claim lock) is not ours: ask again.
    """
    for _ in range(_CLAIM_ATTEMPTS):
        trial = _ask_and_own(study, storage_spec, distributions, n_trials, make_sampler)
        if trial is not _LOST_CLAIM:
            break
    if trial is None or trial is _LOST_CLAIM:
        return None
    # Without a lock (SQLite) two processes may ask at the same moment: the later one backs off.
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and counts_toward_budget(t)]
    if len(earlier) >= n_trials:
        storage = study_storage(study)
        try:
            storage.set_trial_system_attr(trial_id(trial), SURPLUS_ATTR, True)
            storage.set_trial_user_attr(trial_id(trial), FAIL_REASON_ATTR, "surplus: the study already had n_trials")
            storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another process already ended it
        return None
    return trial


_LOST_CLAIM: Any = object()
_CLAIM_ATTEMPTS = 20  # each lost claim means another process made progress


def _ask_and_own(
    study: optuna.Study,
    storage_spec: str,
    distributions: dict[str, BaseDistribution],
    n_trials: int,
    make_sampler: Callable[[int], BaseSampler],
) -> Trial | None:
    """One claim under the claim lock: the asked trial with its owner recorded, None when the study is
    full, or `_LOST_CLAIM` when another process finished the trial before its owner was recorded."""
    with claim_lock(storage_spec, study_storage(study)):
        fail_abandoned_trials(study, claims_held=claims_serialized(storage_spec, study_storage(study)))
        trials = study.get_trials(deepcopy=False)
        if trials_counted(trials) >= n_trials:
            return None
        study.sampler = make_sampler(len(trials))
        with warnings.catch_warnings():
            # Optuna expects heartbeats from `Study.optimize` only; the runner records them itself.
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
            trial = study.ask(distributions)
        owner = process_identity()
        storage = study_storage(study)
        try:
            set_trial_system_attr(study, trial_id(trial), OWNER_ATTR, owner)
            storage.set_trial_user_attr(trial_id(trial), HOST_ATTR, owner["host"])
            if is_heartbeat_enabled(storage):
                storage.record_heartbeat(trial_id(trial))  # a worker dying before its first beat goes stale too
        except optuna.exceptions.UpdateFinishedTrialError:
            return _LOST_CLAIM
    return trial
