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
