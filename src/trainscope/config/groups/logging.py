"""The `logging` group, typed: what each run writes to TensorBoard besides the loop's scalars.

The defaults are `conf/logging/default.yaml`'s (a test keeps the two equal): an option that leaves a key out
gets what `logging=default` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trainscope.config.rules import BOOLEAN, PORT, POSITIVE_INT, POSITIVE_NUMBER, int_at_least
from trainscope.config.typed import TypedGroup, key


@dataclass(frozen=True, kw_only=True)
class LoggingConfig(TypedGroup):
    """The `logging` keys: how often the loop logs, and which TensorBoard panels the run writes."""

    GROUP: ClassVar[str] = "logging"

    log_every_n_steps: int = key(POSITIVE_INT, 20)
    flush_secs: float = key(POSITIVE_NUMBER, 5.0)  # the writer also flushes after every validation
    progress_bar: bool = key(BOOLEAN, True)
    text: bool = key(BOOLEAN, True)  # resolved config and model summary, once at the start
    images: bool = key(BOOLEAN, True)  # input grid at the start; misclassified val examples per validation
    images_every_n_epochs: int = key(int_at_least(1), 1)
    num_images: int = key(int_at_least(1), 16)  # tiles per image grid
    worst_images: bool = key(BOOLEAN, False)  # the num_images val examples with the highest loss
    confusion_matrix: bool = key(BOOLEAN, True)  # and per-class precision/recall, per validation
    histograms_every_n_epochs: int = key(int_at_least(0), 5)  # weights and gradients; 0 = off
    graph: bool = key(BOOLEAN, False)  # model graph (add_graph)
    serve: bool = key(BOOLEAN, False)  # start (or reuse) a TensorBoard over the run's or the sweep's folder
    serve_port: int = key(PORT, 0)  # 0 = any free port
    serve_stay: bool = key(BOOLEAN, False)  # leave a single run's server running after the run
