"""HParams sessions and experiment declarations, written with TensorBoard's own protos (no TensorFlow).

One run directory is one HParams session. Its start info (hyperparameters, the run's short name as group name:
the *Trial ID* column, see `trainscope.tensorboard.trial_names`; the run directory as `model_uri`, the start time)
and, at the very end, its end info go into the run's own event file through the run's one
`SummaryWriter`: no sub-run, so the session's metrics are the run's own scalar tags (`val/acc`,
`val/acc_best`, ...) and their values in the HParams tab are the last logged points, updating live
while the run trains.

TensorBoard keeps only the first summary metadata of a tag in a run, so a second start or end info
in the same run is silently ignored: `HParamsSession` writes each exactly once. While a run trains
its session has no end info and shows as status "Unknown".

Run status mapping. `SessionEndInfo.status` only knows SUCCESS/FAILURE/RUNNING/UNKNOWN, so the
session also writes a `trial_state` scalar (at the run's final step) that tells the outcomes apart:

    trial_state  run status      session status
    0            completed       SUCCESS
    1            stopped_early   SUCCESS   (early stopping is a normal end)
    2            pruned          FAILURE   (it did not train to its end: unticking Failure hides it with the failed)
    3            failed          FAILURE   (exception or NaN loss; a full disk leaves the session open, see below)
    4            interrupted     (none)    (stopped by a signal; the session stays open, "Unknown")
    5            running         (none)    (written at the start: readable while it trains)

An interrupted run writes `trial_state` 4 but no end info: TensorBoard keeps only the first end info
of a run, and `python train.py resume=<run_dir>` continues the same session (`resume()` writes no second
start info), so the segment that truly ends the run writes the one end info with the true status. A run that
failed on a full disk is resumable too: it writes `trial_state` 3 (through a new event file when the run's
writer died of the full disk) and no end info.

TensorBoard's Status checkboxes then tell the runs that trained to their planned end (Success) from those that
did not (Failure); `trial_state`, the first metric column, tells a pruned run from a failed one.

Columns. TensorBoard 2.21 uses the experiment declaration of the *first* run it lists that holds one, and that
order is not fixed (the Rust loader lists runs in hash order, a new order each start), so a declaration at one
sweep's root showed that sweep's columns, or another's, over `outputs/`. Instead every session declares the
experiment itself, from the run's own hyperparameters: all of them (the flattened config: the same keys for
every run of the same config groups, whatever was swept), and the same metrics for every run of a task
(`metric_columns`, or the list its sweep recorded with `write_sweep_metrics`). Whichever run TensorBoard reads
first, the columns are then the same, and no event file lies at a sweep's root (no `.` run in the run list).
What can differ is which five hyperparameters the tab ticks at first (those marked as differing): a run marks
the keys its own sweep and every sweep already under the same `outputs/` sweep (`swept_keys_near`), so only a
run older than a sweep misses that sweep's keys there (they are columns all the same, one tick away). The
declaration gives no domains: a discrete domain would filter out the values of other sweeps, and TensorBoard has
no log-scale declaration (choose *Log* on an axis of the parallel coordinates view).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
from torch.utils.tensorboard import SummaryWriter

from trainscope.adapters.tensorboard_private import event_file_writer
from trainscope.config.flatten import HParamValue, hparams_from_config, normalize_value
from trainscope.config.overrides import override_key
from trainscope.config.run_names import read_sweep_record, swept_keys, write_sweep_record
from trainscope.core.run_dir import RunStatus
from trainscope.tensorboard.trial_names import swept_keys_near, trial_name
from trainscope.tensorboard.writer import EPOCH_TAG

TRIAL_STATE_TAG = "trial_state"

TRIAL_STATES: dict[RunStatus, int] = {
    RunStatus.COMPLETED: 0,
    RunStatus.STOPPED_EARLY: 1,
    RunStatus.PRUNED: 2,
    RunStatus.FAILED: 3,
    RunStatus.INTERRUPTED: 4,
}
"""Final run status (the trainer's `trainer.status`) -> value of the `trial_state` scalar."""

SESSION_STATUS: dict[RunStatus, int] = {
    RunStatus.COMPLETED: api_pb2.STATUS_SUCCESS,
    RunStatus.STOPPED_EARLY: api_pb2.STATUS_SUCCESS,
    RunStatus.PRUNED: api_pb2.STATUS_FAILURE,
    RunStatus.FAILED: api_pb2.STATUS_FAILURE,
}
"""Final run status -> `SessionEndInfo.status` (an interrupted run writes none: see the module docstring)."""

RUNNING_STATE = 5
"""`trial_state` of a run that trains: written at its start and at each resume, replaced by the final state."""

SWEEP_METRICS_FILE = ".hparams_metrics.json"
"""At a sweep's root: the JSON list of the metric columns every run of the sweep declares (`write_sweep_metrics`)."""

RUN_FACTS: tuple[str, ...] = (EPOCH_TAG, TRIAL_STATE_TAG)
"""Columns every run has, whatever its task: epochs run and how it ended."""


def metric_columns(task_metrics: Sequence[str]) -> list[str]:
    """The HParams metric columns of runs whose task shows `task_metrics`, in the order TensorBoard shows them.

    `trial_state` comes first, so it is among the five metrics the tab shows before any is ticked: a pruned or
    failed row is told apart at a glance; the epoch count comes last. The `test/*` tags are left out: a run with
    `trainer.test=false` never logs them, a declared metric a run lacks empties the parallel coordinates and
    scatter views (TensorBoard leaves out every run missing a shown metric), and a folder may hold tested and
    untested runs side by side. Hyperparameters are chosen on the validation split; the test scores stay in the
    Scalars tab and `metrics.json`.
    """
    shown = [tag for tag in task_metrics if not tag.startswith("test/")]
    return [TRIAL_STATE_TAG, *shown, *(fact for fact in RUN_FACTS if fact != TRIAL_STATE_TAG)]


DEFAULT_METRICS: tuple[str, ...] = tuple(metric_columns(["val/acc", "val/acc_best", "val/loss", "train/loss"]))
"""The columns of the default task (`task=classification`, `Task.hparams_metrics`) when a caller names none;
sweeps declare their task's own (`trainscope.sweep.objectives`)."""

_METRIC_DISPLAY_NAMES = {EPOCH_TAG: "epochs run"}
_TRIAL_STATE_DESCRIPTION = (
    "0 completed, 1 stopped early, 2 pruned, 3 failed, 4 interrupted, 5 running (see trainscope docs/monitoring.md)"
)


@dataclass(frozen=True)
class Interval:
    """A continuous or integer range of a swept hyperparameter (both ends included).

    Int ends give an integer interval, otherwise a real one; a log scale is not representable in a
    TensorBoard declaration (2.21) and is ignored.
    """

    low: int | float
    high: int | float


Domain = Sequence[HParamValue] | Interval
"""Discrete values of a swept hyperparameter, or an `Interval`."""


class HParamsSession:
    """The HParams session of one run directory, written through the run's own `SummaryWriter`.

    Build it with `from_config`, call `start()` when the run starts training and `end(status, step)` in
    a `finally`, with the trainer's final status. Both are no-ops when repeated, and `end` without
    `start` writes nothing, because TensorBoard would ignore a second start/end info anyway.

    With `metrics` the session also declares the experiment (its hyperparameters, those in `varying` marked as
    differing, and `metrics`), see the module docstring.
    """

    def __init__(
        self,
        writer: SummaryWriter,
        run_dir: str | Path,
        hparams: Mapping[str, HParamValue],
        name: str = "",
        metrics: Sequence[str] | None = None,
        varying: Iterable[str] = (),
    ) -> None:
        self.writer = writer
        self.run_dir = Path(run_dir).resolve()
        self.hparams = _normalized_hparams(hparams)
        self.name = name
        self.metrics = None if metrics is None else list(metrics)
        self.varying = set(varying)
        self.started = False
        self.ended = False

    @classmethod
    def from_config(
        cls, cfg: DictConfig, writer: SummaryWriter, run_dir: str | Path, metrics: Sequence[str] = DEFAULT_METRICS
    ) -> HParamsSession:
        """The session of a Hydra run: hyperparameters from `cfg`, the group choices and `cfg.hparams`; its name
        from the run directory and the command line (`trial_name`); its metric columns those its sweep recorded
        (`write_sweep_metrics`), else `metrics` (the task's `metric_columns`)."""
        run_dir = Path(run_dir)
        choices = dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}
        overrides = _named_overrides() if HydraConfig.initialized() else []
        include = OmegaConf.select(cfg, "hparams.include", default=None) or ["*"]
        exclude = OmegaConf.select(cfg, "hparams.exclude", default=None) or []
        hparams = hparams_from_config(cfg, choices, include=list(include), exclude=list(exclude))
        varying = swept_keys(run_dir.parent)
        if varying is None:  # a single run: what its command line set
            varying = [override_key(item) for item in overrides]
        varying = {*varying, *swept_keys_near(run_dir)}  # and what the other sweeps beside it sweep
        declared = sweep_metrics(run_dir.parent) or list(metrics)
        return cls(writer, run_dir, hparams, trial_name(run_dir, overrides), declared, varying)

    def start(self, start_time_secs: float | None = None) -> None:
        """Write the session start info (and the run's experiment declaration), `trial_state` running, and flush,
        so the run appears in the HParams tab at once."""
        if self.started:
            return
        summary = session_start_summary(
            self.hparams, model_uri=str(self.run_dir), start_time_secs=start_time_secs, group_name=self.name
        )
        file_writer = _file_writer(self.writer)
        file_writer.add_summary(summary, global_step=0)
        if self.metrics is not None:
            file_writer.add_summary(run_experiment_declaration(self.hparams, self.metrics, self.varying), 0)
        self.writer.add_scalar(TRIAL_STATE_TAG, RUNNING_STATE, 0)
        self.writer.flush()
        self.started = True

    def resume(self) -> None:
        """Continue the session an earlier segment of this run started (its start info is in the run).

        Nothing is written: the resumed run's writer purges the points after its checkpoint's step, the earlier
        segment's final `trial_state` among them, so the column reads running again.
        """
        self.started = True

    def end(
        self, run_status: str, global_step: int = 0, end_time_secs: float | None = None, leave_open: bool = False
    ) -> None:
        """Write `trial_state` and the session end info for the trainer's final `run_status`.

        `run_status` is a key of `TRIAL_STATES`, or `RunStatus.RUNNING` for a run that ended without the loop
        settling its status (an exception outside `fit`), which counts as failed. `leave_open`: write no end info
        (a run that can be resumed, as after a full disk); an interrupted run is always left open. When the run's
        writer cannot write any more (its thread died of a full disk), both go into a new event file of the run.
        """
        if run_status == RunStatus.RUNNING:
            run_status = RunStatus.FAILED
        if run_status not in TRIAL_STATES:
            raise ValueError(f"run status must be one of {sorted(map(str, TRIAL_STATES))}, got {run_status!r}")
        if self.ended or not self.started:
            return
        records = [_scalar_summary(TRIAL_STATE_TAG, TRIAL_STATES[run_status])]
        # left open for the resumed run, which writes the end info once it truly ends
        if run_status != RunStatus.INTERRUPTED and not leave_open:
            self.ended = True
            records.append(session_end_summary(SESSION_STATUS[run_status], end_time_secs))
        try:
            for record in records:
                _file_writer(self.writer).add_summary(record, global_step=global_step)
            self.writer.flush()
        except OSError:
            fresh = SummaryWriter(log_dir=str(self.run_dir), filename_suffix=".end")
            try:
                for record in records:
                    fresh.file_writer.add_summary(record, global_step=global_step)
            finally:
                fresh.close()


def session_start_summary(
    hparams: Mapping[str, HParamValue],
    model_uri: str = "",
    start_time_secs: float | None = None,
    group_name: str = "",
) -> summary_pb2.Summary:
    """A `_hparams_/session_start_info` summary (TensorBoard's `hparams_pb` plus `model_uri` and `group_name`).

    The group name is the *Trial ID* column; it must be unique per run (`trial_name`), since sessions with one
    group name are merged into one row with averaged metrics (what `hparams_pb` does by default: it names the
    group by a hash of the hparams, which merges two seeds). Without one TensorBoard names the row by the run's
    path relative to the logdir it was opened on (`multirun/2026-12-02/14-50-07/3_model=...` over `outputs/`).
    """
    summary = summary_v2.hparams_pb(_normalized_hparams(hparams), start_time_secs=start_time_secs)
    value = summary.value[0]
    plugin_data = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
    plugin_data.group_name = group_name
    plugin_data.model_uri = model_uri
    value.metadata.CopyFrom(
        metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_start_info=plugin_data))
    )
    return summary


def session_end_summary(status: int, end_time_secs: float | None = None) -> summary_pb2.Summary:
    """A `_hparams_/session_end_info` summary; `status` is an `api_pb2.Status` value."""
    end_info = plugin_data_pb2.SessionEndInfo(
        status=status, end_time_secs=time.time() if end_time_secs is None else end_time_secs
    )
    summary = summary_pb2.Summary()
    summary.value.add(
        tag=metadata.SESSION_END_INFO_TAG,
        metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=end_info)),
        tensor=metadata.NULL_TENSOR,
    )
    return summary


def experiment_declaration(
    domains: Mapping[str, Domain],
    metrics: Sequence[str] = DEFAULT_METRICS,
    time_created_secs: float | None = None,
) -> summary_pb2.Summary:
    """A `_hparams_/experiment` Summary proto declaring the swept hyperparameters and the metric tags."""
    hparams = [summary_v2.HParam(name, _tensorboard_domain(name, domain)) for name, domain in domains.items()]
    metric_infos = [
        summary_v2.Metric(
            tag,
            display_name=_METRIC_DISPLAY_NAMES.get(tag),
            description=_TRIAL_STATE_DESCRIPTION if tag == TRIAL_STATE_TAG else None,
            dataset_type=_dataset_type(tag),
        )
        for tag in metrics
    ]
    created = time.time() if time_created_secs is None else time_created_secs
    return summary_v2.hparams_config_pb(hparams, metric_infos, time_created_secs=created)


def run_experiment_declaration(
    hparams: Mapping[str, HParamValue], metrics: Sequence[str], varying: Iterable[str] = ()
) -> summary_pb2.Summary:
    """The experiment declaration one session writes into its own run: every one of its hyperparameters (typed by
    its value, no domain), those in `varying` marked as differing, and `metrics` (see the module docstring)."""
    summary = experiment_declaration({}, metrics, time_created_secs=0.0)
    value = summary.value[0]
    plugin_data = metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    shown = set(varying)
    for name, hparam in sorted(_normalized_hparams(hparams).items()):
        plugin_data.hparam_infos.add(name=name, type=_data_type(hparam), differs=name in shown)
    value.metadata.CopyFrom(metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(experiment=plugin_data)))
    return summary


def write_sweep_metrics(sweep_dir: Path, metrics: Sequence[str]) -> None:
    """Record at the sweep root the metric columns every run of the sweep declares, before its first run starts
    (a grid of seeds adds the `_std` columns of its aggregate rows, an Optuna search its objectives)."""
    write_sweep_record(sweep_dir, SWEEP_METRICS_FILE, metrics)


def sweep_metrics(sweep_dir: Path) -> list[str] | None:
    """The metrics `write_sweep_metrics` recorded at `sweep_dir`; None when it holds no (readable) record."""
    return read_sweep_record(sweep_dir, SWEEP_METRICS_FILE)


def write_experiment_declaration(
    sweep_dir: str | Path,
    domains: Mapping[str, Domain],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> None:
    """Write the experiment declaration into an event file directly in `sweep_dir`.

    For a folder of runs not written by trainscope. TensorBoard uses the declaration of the first run it lists
    that holds one, in no fixed order, and the folder becomes a run of its own (`.` when opened on it); trainscope's
    own sweeps write none (each session declares itself: `run_experiment_declaration`).
    """
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(sweep_dir), filename_suffix=".hparams")
    try:
        _file_writer(writer).add_summary(experiment_declaration(domains, metrics), global_step=0)
    finally:
        writer.close()


def _tensorboard_domain(name: str, domain: Domain) -> summary_v2.Domain:
    if isinstance(domain, Interval):
        low, high = domain.low, domain.high
        if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool | float):
            return summary_v2.IntInterval(int(low), int(high))
        return summary_v2.RealInterval(float(low), float(high))
    values = [value for value in (normalize_value(item) for item in domain) if value is not None]
    if not values:
        raise ValueError(f"hparam {name!r} has an empty domain; pass at least one value")
    if all(isinstance(value, bool) for value in values):
        dtype: type = bool
    elif all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        dtype = float if any(isinstance(value, float) for value in values) else int
        values = [dtype(value) for value in values]
    else:
        dtype = str
        values = [value if isinstance(value, str) else _as_text(value) for value in values]
    return summary_v2.Discrete(sorted(set(values)), dtype=dtype)


def _data_type(value: HParamValue) -> int:
    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    if isinstance(value, int | float):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def _scalar_summary(tag: str, value: float) -> summary_pb2.Summary:
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, simple_value=float(value))
    return summary


def _as_text(value: HParamValue) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _dataset_type(tag: str) -> int | None:
    if tag.startswith("train/"):
        return summary_v2.Metric.TRAINING
    if tag.startswith("val/"):
        return summary_v2.Metric.VALIDATION
    return None


def _normalized_hparams(hparams: Mapping[str, object]) -> dict[str, HParamValue]:
    normalized = {}
    for key, raw in hparams.items():
        value = normalize_value(raw)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        normalized[str(key)] = value
    return normalized


def _named_overrides() -> list[str]:
    """The run's command-line overrides that name it (those its directory name is made of)."""
    hydra = HydraConfig.get()
    excluded = set(OmegaConf.select(hydra, "job.config.override_dirname.exclude_keys", default=None) or [])
    return [item for item in hydra.overrides.task if override_key(item) not in excluded]


def _file_writer(writer: SummaryWriter) -> Any:
    """The writer's event-file writer (torch recreates it after `close()`)."""
    return writer.file_writer if writer.file_writer is not None else event_file_writer(writer)
