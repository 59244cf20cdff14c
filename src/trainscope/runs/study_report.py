"""The report of an Optuna study: best value and parameters, charts, and every trial, as the sweep recorded them.

Made at the end of every Optuna sweep and on demand (`trainscope-runs --study <sweep dir>`), from the study's
storage (not from the sweeping process's memory), so a resumed or cooperating sweep reports the whole study:

- `<sweep dir>/report/*.png`: optimization history (complete trials, the best so far, pruned trials at their last
  reported value, failed ones on the axis), intermediate values (each trial's pruning metric per epoch),
  parameter importances (Optuna's own evaluator: fANOVA with scikit-learn installed, else PED-ANOVA), parallel
  coordinates and, for several objectives, the Pareto front;
- `<sweep dir>/report.md`: the same charts with the best trial(s), the trial counts and a table of every trial;
- the sweep's own TensorBoard run (the sweep root, next to its HParams experiment): each chart as an image
  `report/<chart>` and report.md as the text `report/summary`, at the step of the number of finished trials.
"""

from __future__ import annotations

import io
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from trainscope.core.run_dir import BEST, CHECKPOINT_DIR, LAST, atomic_write
from trainscope.runs import charts
from trainscope.runs.charts import BLUE, MUTED, ORANGE, RED, Axis, Chart
from trainscope.sweep.optuna.study import TrialCounts, count_trials, is_failure, is_interrupted
from trainscope.trial.attributes import FAIL_REASON_ATTR, METRICS_STUDY_ATTR, MONITOR_STUDY_ATTR, RUN_DIR_ATTR

REPORT_DIR = "report"
REPORT_FILE = "report.md"
TENSORBOARD_TAG = "report"
REPORT_RUN = "report"
"""The study report's TensorBoard run, a folder of the sweep (its chart PNGs are there too)."""


@dataclass
class StudyReport:
    """What the report says about one study, and its charts as PNG bytes by name."""

    study_name: str
    metric_names: list[str]
    directions: list[StudyDirection]
    counts: TrialCounts
    trials: list[FrozenTrial]
    best: list[FrozenTrial]  # the best trial, or the Pareto-optimal ones
    importances: dict[str, dict[str, float]] = field(default_factory=dict)  # objective -> parameter -> importance
    importance_evaluator: str = ""
    importance_notes: list[str] = field(default_factory=list)  # what Optuna warned while computing them
    images: dict[str, bytes] = field(default_factory=dict)


def study_report(study: optuna.Study, metric_names: Sequence[str] | None = None) -> StudyReport:
    """The report of `study`; `metric_names` defaults to the names the sweep recorded on the study."""
    trials = study.get_trials(deepcopy=False)
    names = list(metric_names or study.user_attrs.get(METRICS_STUDY_ATTR) or [])
    directions = list(study.directions)
    names += [f"objective {index}" for index in range(len(names), len(directions))]
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = (study.best_trials if len(directions) > 1 else [study.best_trial]) if complete else []
    report = StudyReport(study.study_name, names, directions, count_trials(trials), trials, best)
    pruning_metric = study.user_attrs.get(MONITOR_STUDY_ATTR) or "reported value"
    if len(directions) == 1:
        report.images["optimization_history"] = _history_chart(trials, names[0], directions[0], pruning_metric)
    if any(trial.intermediate_values for trial in trials):
        report.images["intermediate_values"] = _intermediate_chart(trials, pruning_metric)
    _importances(report, study, complete)
    for objective, importances in report.importances.items():
        key = "param_importances" if len(report.importances) == 1 else f"param_importances_{_slug(objective)}"
        report.images[key] = charts.bar_chart(
            f"Parameter importances for {objective} ({report.importance_evaluator})",
            sorted(importances.items(), key=lambda item: item[1], reverse=True),
            "importance (sums to 1)",
        )
    if complete and any(trial.params for trial in complete):
        report.images["parallel_coordinates"] = _parallel_chart(complete, names[0], directions[0])
    if len(directions) > 1 and complete:
        report.images["pareto_front"] = _pareto_chart(complete, best, names, directions)
    return report


def write_report(report: StudyReport, sweep_dir: Path) -> Path:
    """Write the charts, report.md and the TensorBoard images into `sweep_dir`; the path of report.md."""
    folder = sweep_dir / REPORT_DIR
    for name, image in report.images.items():
        atomic_write(folder / f"{name}.png", image)
    for stale in folder.glob("*.png"):  # a chart an earlier report had and this one has not (one trial left)
        if stale.stem not in report.images:
            stale.unlink(missing_ok=True)
    markdown = report_markdown(report)
    path = sweep_dir / REPORT_FILE
    atomic_write(path, markdown.encode())
    _write_tensorboard(report, sweep_dir, markdown)
    return path


def _write_tensorboard(report: StudyReport, sweep_dir: Path, markdown: str) -> None:
    """Each chart as an image and report.md as text, in a new event file of the run `report` (the sweep's `report/`
    folder, beside the charts' PNGs): a run named for what it holds, not a `.` run in every run list of the sweep.

    Written with TensorBoard's own event writer and protos: no torch to import for `trainscope-runs --study`.
    """
    from PIL import Image
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.text.summary_v2 import text_pb
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    step, now = report.counts.finished, time.time()
    writer = EventFileWriter(str(sweep_dir / REPORT_RUN), filename_suffix=".report")
    try:
        for name, image in report.images.items():
            width, height = Image.open(io.BytesIO(image)).size
            picture = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=image)
            summary = Summary(value=[Summary.Value(tag=f"{TENSORBOARD_TAG}/{name}", image=picture)])
            writer.add_event(Event(wall_time=now, step=step, summary=summary))
        writer.add_event(Event(wall_time=now, step=step, summary=text_pb(f"{TENSORBOARD_TAG}/summary", markdown)))
    finally:
        writer.close()


# --------------------------------------------------------------------------------------------------
# report.md


def report_markdown(report: StudyReport) -> str:
    counts = report.counts
    lines = [
        f"# Study `{report.study_name}`",
        "",
        f"Made {time.strftime('%Y-%m-%d %H:%M:%S')}. "
        + ", ".join(
            f"{'maximize' if direction == StudyDirection.MAXIMIZE else 'minimize'} `{name}`"
            for name, direction in zip(report.metric_names, report.directions, strict=True)
        )
        + ".",
        "",
        "| complete | pruned | failed | interrupted (retried) | running |",
        "| --- | --- | --- | --- | --- |",
        f"| {counts.complete} | {counts.pruned} | {counts.failed} | {counts.interrupted} | {counts.running} |",
        "",
    ]
    if not report.best:
        lines += ["No trial completed: there is no best trial yet.", ""]
    elif len(report.directions) == 1:
        (best,) = report.best
        lines += [
            f"## Best trial: {best.number}",
            "",
            f"- `{report.metric_names[0]}` = {_number(best.value)}",
            *(f"- `{name}` = `{value}`" for name, value in best.params.items()),
            *_run_lines(best),
            "",
        ]
    else:
        lines += [f"## Pareto front: {len(report.best)} trials", ""]
        lines += _trial_table(report, report.best)
    for name in report.images:
        lines += [f"![{name}]({REPORT_DIR}/{name}.png)", ""]
    if report.importances:
        notes = "".join(f" Optuna says: {note}" for note in dict.fromkeys(report.importance_notes))
        lines += [f"Parameter importances: Optuna's `{report.importance_evaluator}`.{notes}", ""]
    lines += ["## Every trial", ""]
    lines += _trial_table(report, report.trials)
    return "\n".join(lines) + "\n"


def _trial_table(report: StudyReport, trials: Sequence[FrozenTrial]) -> list[str]:
    params = list(dict.fromkeys(name for trial in trials for name in trial.params))
    header = ["trial", "state", *(f"`{name}`" for name in report.metric_names), *(f"`{p}`" for p in params), "run"]
    rows = [
        [
            str(trial.number),
            trial_state(trial),
            *(_number(value) for value in (trial.values or [None] * len(report.metric_names))),
            *(f"`{trial.params[p]}`" if p in trial.params else "" for p in params),
            _run_cell(trial),
        ]
        for trial in trials
    ]
    return [
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def trial_state(trial: FrozenTrial) -> str:
    """`complete`, `pruned`, `failed: <reason>`, `interrupted` (retried), `running` or `waiting`."""
    if trial.state == TrialState.FAIL:
        if is_interrupted(trial):
            return "interrupted"
        reason = str(trial.user_attrs.get(FAIL_REASON_ATTR, "")).replace("|", "\\|").splitlines()
        return f"failed: {reason[0]}" if reason else "failed"
    return trial.state.name.lower()


def _run_lines(trial: FrozenTrial) -> list[str]:
    run_dir = trial.user_attrs.get(RUN_DIR_ATTR)
    if not run_dir:
        return []
    checkpoint = best_checkpoint(Path(run_dir))
    return [f"- run directory: `{run_dir}`", *([f"- checkpoint: `{checkpoint}`"] if checkpoint else [])]


def _run_cell(trial: FrozenTrial) -> str:
    run_dir = trial.user_attrs.get(RUN_DIR_ATTR)
    return f"`{Path(run_dir).name}`" if run_dir else ""


def best_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint eval.py would test: best.pt, else last.pt."""
    return next((path for path in (run_dir / CHECKPOINT_DIR / name for name in (BEST, LAST)) if path.is_file()), None)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _slug(name: str) -> str:
    return "".join(character if character.isalnum() else "_" for character in name).strip("_")


# --------------------------------------------------------------------------------------------------
# charts


def _better(direction: StudyDirection) -> Callable[[float, float], bool]:
    return (lambda a, b: a > b) if direction == StudyDirection.MAXIMIZE else (lambda a, b: a < b)


def _history_chart(trials: Sequence[FrozenTrial], metric: str, direction: StudyDirection, pruning_metric: str) -> bytes:
    complete = [(t.number, t.value) for t in trials if t.state == TrialState.COMPLETE and _finite(t.value)]
    pruned = [
        (t.number, t.intermediate_values[max(t.intermediate_values)])
        for t in trials
        if t.state == TrialState.PRUNED and t.intermediate_values
    ]
    failed = [t.number for t in trials if is_failure(t)]
    values = [v for _, v in complete] + [v for _, v in pruned]
    chart = Chart(
        f"Optimization history: {metric}",
        Axis.around([t.number for t in trials] or [0]),
        Axis.around(values or [0.0]),
        "trial",
        metric,
    )
    best_so_far: list[tuple[float, float]] = []  # a staircase: flat until a trial beats the best
    better = _better(direction)
    for number, value in complete:
        if best_so_far:
            best_so_far.append((number, best_so_far[-1][1]))
        if not best_so_far or better(value, best_so_far[-1][1]):
            best_so_far.append((number, value))
    chart.line(best_so_far, ORANGE)
    chart.dots(complete, BLUE)
    chart.crosses(pruned, MUTED)
    chart.crosses([(number, chart.y.low + (chart.y.high - chart.y.low) * 0.02) for number in failed], RED)
    chart.legend(
        [
            (f"complete ({len(complete)})", BLUE),
            ("best so far", ORANGE),
            (f"pruned ({len(pruned)}, last {pruning_metric})", MUTED),
            (f"failed ({len(failed)})", RED),
        ]
    )
    return chart.png()


def _intermediate_chart(trials: Sequence[FrozenTrial], pruning_metric: str) -> bytes:
    reported = [t for t in trials if t.intermediate_values]
    steps = [step for t in reported for step in t.intermediate_values]
    values = [value for t in reported for value in t.intermediate_values.values()]
    chart = Chart(
        f"Intermediate values: {pruning_metric} per epoch",
        Axis.around(steps),
        Axis.around(values),
        "epoch",
        pruning_metric,
    )
    for trial in reported:
        points = sorted(trial.intermediate_values.items())
        color = MUTED if trial.state == TrialState.PRUNED else RED if is_failure(trial) else BLUE
        chart.line(points, color)
        if trial.state == TrialState.PRUNED:
            chart.crosses(points[-1:], color)
    pruned = sum(t.state == TrialState.PRUNED for t in reported)
    chart.legend([(f"complete ({len(reported) - pruned})", BLUE), (f"pruned ({pruned}, x: where)", MUTED)])
    return chart.png()


def _importances(report: StudyReport, study: optuna.Study, complete: Sequence[FrozenTrial]) -> None:
    """Optuna's importances per objective, when two complete trials differ in a parameter."""
    varied = {
        name for name in {p for t in complete for p in t.params} if len({str(t.params.get(name)) for t in complete}) > 1
    }
    if len(complete) < 2 or not varied:
        return
    from optuna.importance import get_param_importances

    evaluator = _importance_evaluator()
    report.importance_evaluator = type(evaluator).__name__
    for index, name in enumerate(report.metric_names):
        target = None if len(report.directions) == 1 else (lambda trial, index=index: trial.values[index])
        try:
            with warnings.catch_warnings(record=True) as caught:  # said in the report, not on the terminal
                warnings.simplefilter("always")
                importances = get_param_importances(study, evaluator=evaluator, target=target)
        except (ValueError, RuntimeError) as error:  # e.g. a search space that changed between trials
            report.importance_evaluator += f" (not computed: {error})"
            return
        for warning in caught:
            report.importance_notes.append(str(warning.message))
        report.importances[name] = {param: float(value) for param, value in importances.items()}


def _importance_evaluator() -> optuna.importance.BaseImportanceEvaluator:
    """Optuna's default, fANOVA, where scikit-learn is installed; else its PED-ANOVA, which needs nothing more."""
    import importlib.util

    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    if importlib.util.find_spec("sklearn") is not None:
        return FanovaImportanceEvaluator(seed=0)
    return PedAnovaImportanceEvaluator()


def _parallel_chart(complete: Sequence[FrozenTrial], metric: str, direction: StudyDirection) -> bytes:
    names = list(dict.fromkeys(name for trial in complete for name in trial.params))
    axes: list[tuple[str, Axis, Sequence[str] | None]] = []
    for name in names:
        distribution = next(t.distributions[name] for t in complete if name in t.distributions)
        values = [t.params[name] for t in complete if name in t.params]
        if isinstance(distribution, CategoricalDistribution):
            categories = [str(choice) for choice in distribution.choices]
            axes.append((name, Axis(-0.5, len(categories) - 0.5), categories))
        else:
            log = isinstance(distribution, FloatDistribution | IntDistribution) and distribution.log
            axes.append((name, Axis.around([float(v) for v in values], log=log), None))
    objective = [t.values[0] for t in complete]
    axes.append((metric, Axis.around(objective), None))
    low, high = min(objective), max(objective)

    def shade(value: float) -> float:
        fraction = (value - low) / (high - low) if high > low else 1.0
        return fraction if direction == StudyDirection.MAXIMIZE else 1 - fraction

    lines = []
    for trial in complete:
        positions = []
        for name, _, categories in axes[:-1]:
            value = trial.params.get(name)
            positions.append(float(categories.index(str(value))) if categories is not None else float(value))
        lines.append(([*positions, trial.values[0]], shade(trial.values[0])))
    return charts.parallel_coordinates(f"Parallel coordinates: {metric}", axes, lines, metric)


def _pareto_chart(
    complete: Sequence[FrozenTrial],
    best: Sequence[FrozenTrial],
    names: Sequence[str],
    directions: Sequence[StudyDirection],
) -> bytes:
    front = {trial.number for trial in best}
    chart = Chart(
        f"Pareto front: {names[0]} vs {names[1]}",
        Axis.around([t.values[0] for t in complete]),
        Axis.around([t.values[1] for t in complete]),
        f"{names[0]} ({directions[0].name.lower()})",
        f"{names[1]} ({directions[1].name.lower()})",
    )
    chart.dots([(t.values[0], t.values[1]) for t in complete if t.number not in front], MUTED)
    chart.dots([(t.values[0], t.values[1]) for t in complete if t.number in front], RED, radius=5)
    chart.legend([(f"Pareto-optimal ({len(front)})", RED), (f"dominated ({len(complete) - len(front)})", MUTED)])
    if len(names) > 2:
        chart.note(f"the first two of {len(names)} objectives")
    return chart.png()


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
