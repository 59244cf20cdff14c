"""Which TensorBoard monitors a run gets: decided by the `logging` group, one switch per monitor.

`logging=minimal` writes the loop's scalars only, `default` adds text, images, the confusion matrix and
occasional histograms, `full` writes everything more often (and the model graph). Any switch can be
flipped on the command line, e.g. `logging.histograms_every_n_epochs=1` or `logging.images=false`.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from trainscope.config.validation import is_int
from trainscope.engine.callbacks import Callback
from trainscope.errors import ConfigError
from trainscope.monitor.classification import ConfusionMatrixMonitor
from trainscope.monitor.histograms import WeightHistograms
from trainscope.monitor.images import InputImages, MisclassifiedImages, WorstImages
from trainscope.monitor.system import CudaMemoryMonitor
from trainscope.monitor.text import ModelGraph, RunText


def build_monitors(logging_cfg: DictConfig | dict[str, Any]) -> dict[str, Callback]:
    """The monitor callbacks `logging_cfg` switches on, keyed `monitor/<name>` (after the user's callbacks)."""
    get = logging_cfg.get
    histogram_epochs = _int(get("histograms_every_n_epochs", 0), "logging.histograms_every_n_epochs")
    images_every = _int(get("images_every_n_epochs", 1), "logging.images_every_n_epochs", minimum=1)
    num_images = _int(get("num_images", 16), "logging.num_images", minimum=1)
    monitors: dict[str, Callback] = {"monitor/memory": CudaMemoryMonitor()}
    if _bool(get("text", False), "logging.text"):
        monitors["monitor/text"] = RunText()
    if _bool(get("graph", False), "logging.graph"):
        monitors["monitor/graph"] = ModelGraph()
    if histogram_epochs > 0:
        monitors["monitor/histograms"] = WeightHistograms(every_n_epochs=histogram_epochs)
    if _bool(get("images", False), "logging.images"):
        monitors["monitor/input_images"] = InputImages(num_images=num_images)
        monitors["monitor/misclassified"] = MisclassifiedImages(num_images=num_images, every_n_epochs=images_every)
    if _bool(get("worst_images", False), "logging.worst_images"):
        monitors["monitor/worst_images"] = WorstImages(num_images=num_images, every_n_epochs=images_every)
    if _bool(get("confusion_matrix", False), "logging.confusion_matrix"):
        monitors["monitor/confusion_matrix"] = ConfusionMatrixMonitor(image=True)
    return monitors


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _int(value: Any, key: str, minimum: int = 0) -> int:
    if not is_int(value) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value
