"""A default run's directory holds exactly what it held before the start-up and exit work (issue 28): the same
files, the same TensorBoard tags with the same number of points, the same metrics.json keys.

The lists below were taken from a run of main at eadef5b with the command of `DEFAULT_ISH` (the default config:
SmallCNN on the bundled MNIST sample, default logging and callbacks; only shorter, so that it takes seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import TrainCLI
from tests.helpers.events import read_events

DEFAULT_ISH = ["trainer.max_epochs=2", "trainer.limit_train_batches=20", "trainer.limit_val_batches=2"]

FILES = [
    ".hydra/config.yaml",
    ".hydra/hydra.yaml",
    ".hydra/overrides.yaml",
    "checkpoints/best.pt",
    "checkpoints/last.pt",
    "checkpoints/previous.pt",
    "events.out.tfevents.*",
    "metrics.csv",  # added on purpose by issue 26: every epoch's scalars as CSV
    "metrics.json",
    "run.lock",
    "train.log",
]

DIGITS = ["0_-_zero", "1_-_one", "2_-_two", "3_-_three", "4_-_four", "5_-_five", "6_-_six", "7_-_seven"]
DIGITS += ["8_-_eight", "9_-_nine"]
EVERY_EPOCH = [
    "train/epoch", "lr", "lr_epoch", "momentum", "time/epoch_seconds",
    "train/acc", "train/acc_step", "train/grad_norm", "train/loss", "train/loss_step", "train/samples_per_sec",
    "val/acc", "val/acc_best", "val/loss", "val/precision_macro", "val/recall_macro",
    *(f"val_precision/{digit}" for digit in DIGITS),
    *(f"val_recall/{digit}" for digit in DIGITS),
]  # fmt: skip
# Changed on purpose by issue 29: `epoch` is `train/epoch`; the `health/*` flags appear once a check fires (none
# here); `trial_state` is written at the start (5, running) and at the end.
SCALARS = {**dict.fromkeys(EVERY_EPOCH, 2), "test/acc": 1, "test/loss": 1, "trial_state": 2}
IMAGES = {"images/train_inputs": 1, "images/val_misclassified": 2, "val/confusion_matrix": 2}
LAYERS = ["classifier.1.bias", "classifier.1.weight", "classifier.4.bias", "classifier.4.weight"]
LAYERS += ["features.0.weight", "features.1.bias", "features.1.weight", "features.4.weight"]
LAYERS += ["features.5.bias", "features.5.weight"]
HISTOGRAMS = {f"{kind}/{layer}": 1 for kind in ("weights", "gradients") for layer in LAYERS}
TENSORS = dict.fromkeys(
    ["_hparams_/experiment", "_hparams_/session_end_info", "_hparams_/session_start_info"]
    + ["config/resolved/text_summary"]
    + ["model/summary/text_summary"],
    1,
)
METRICS_KEYS = ["best", "epochs_run", "final", "global_step", "optimized_metric", "reason", "run_dir", "status"]
METRICS_KEYS += ["test", "wall_time_seconds"]
METRICS_KEYS = sorted([*METRICS_KEYS, "monitor"])  # added on purpose by issue 26: the monitored metric


def listed(run_dir: Path) -> list[str]:
    names = sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("*") if not path.is_dir())
    return [("events.out.tfevents.*" if name.startswith("events.out.tfevents.") else name) for name in names]


@pytest.mark.slow
def test_default_run_directory_holds_what_it_always_held(train: TrainCLI) -> None:
    result = train(*DEFAULT_ISH)
    assert result.returncode == 0, result.stderr
    run_dir = train.run_dir()
    assert listed(run_dir) == FILES

    events = read_events(run_dir)
    counted = {
        "scalars": {tag: len(events.Scalars(tag)) for tag in events.Tags()["scalars"]},
        "images": {tag: len(events.Images(tag)) for tag in events.Tags()["images"]},
        "histograms": {tag: len(events.Histograms(tag)) for tag in events.Tags()["histograms"]},
        "tensors": {tag: len(events.Tensors(tag)) for tag in events.Tags()["tensors"]},
    }
    assert counted == {"scalars": SCALARS, "images": IMAGES, "histograms": HISTOGRAMS, "tensors": TENSORS}
    assert events.Tags()["graph"] is False

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert sorted(metrics) == METRICS_KEYS
    assert metrics["status"] == "completed" and set(metrics["test"]) == {"test/acc", "test/loss"}
