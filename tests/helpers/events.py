"""Read a run's TensorBoard event files with TensorBoard's own readers."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader


def read_events(log_dir: Path) -> EventAccumulator:
    """Every event TensorBoard's own reader finds in `log_dir` (no sampling), loaded once."""
    kinds = ("scalars", "images", "histograms", "tensors")
    accumulator = EventAccumulator(str(log_dir), size_guidance={kind: 0 for kind in kinds})
    accumulator.Reload()
    return accumulator


def session_infos(run_dir: Path, tag: str) -> int:
    """How many summaries with `tag` all event files of the run hold (raw, before TensorBoard dedups)."""
    count = 0
    for path in run_dir.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            count += sum(1 for value in event.summary.value if value.tag == tag)
    return count


def points_per_tag(run_dir: Path) -> dict[str, list[int]]:
    """Every tag TensorBoard shows for the run, with the steps of its points (a step twice = a duplicate)."""
    events = read_events(run_dir)
    tags = events.Tags()
    readers = {
        "scalars": events.Scalars,
        "histograms": events.Histograms,
        "images": events.Images,
        "tensors": events.Tensors,
    }
    return {
        f"{kind}:{tag}": sorted(point.step for point in read(tag))
        for kind, read in readers.items()
        for tag in tags[kind]
        if tag != "trial_state"  # written when a segment ends, interrupted or not
    }
