"""task=classification (the default) writes exactly the TensorBoard tags trainscope wrote before tasks existed.

The expected sets were read with TensorBoard's EventAccumulator from a run of main at a293ddc (the commit before
the task layer), with the same command line.
"""

from __future__ import annotations

import pytest

from tests.helpers.cli import TINY, TrainCLI
from tests.helpers.events import read_events

HISTOGRAMS = {
    f"{kind}/net.{layer}.{part}" for kind in ("gradients", "weights") for layer in (1, 4) for part in ("bias", "weight")
}
TAGS_BEFORE_TASKS: dict[str, set[str]] = {
    "images": {
        "images/train_inputs",
        "val/confusion_matrix",
    },
    "histograms": HISTOGRAMS,
    "scalars": {
        # Changed on purpose by issue 29 (the Scalars tab opens on what matters): `epoch` is `train/epoch`, and
        # the five `health/*` flags are written only once their check fires (none does here).
        "train/epoch",
        "lr",
        "lr_epoch",
        "momentum",
        "test/acc",
        "test/loss",
        "time/epoch_seconds",
        "train/acc",
        "train/acc_step",
        "train/grad_norm",
        "train/loss",
        "train/loss_step",
        "train/samples_per_sec",
        "trial_state",
        "val/acc",
        "val/acc_best",
        "val/loss",
        "val/precision_macro",
        "val/recall_macro",
        "val_precision/class_0",
        "val_precision/class_1",
        "val_precision/class_2",
        "val_precision/class_3",
        "val_precision/class_4",
        "val_precision/class_5",
        "val_precision/class_6",
        "val_precision/class_7",
        "val_precision/class_8",
        "val_precision/class_9",
        "val_recall/class_0",
        "val_recall/class_1",
        "val_recall/class_2",
        "val_recall/class_3",
        "val_recall/class_4",
        "val_recall/class_5",
        "val_recall/class_6",
        "val_recall/class_7",
        "val_recall/class_8",
        "val_recall/class_9",
    },
    "distributions": HISTOGRAMS,  # TensorBoard lists every histogram as a distribution too
    "tensors": {
        "_hparams_/experiment",  # issue 29: each run declares its columns (none at a sweep root)
        "_hparams_/session_end_info",
        "_hparams_/session_start_info",
        "config/resolved/text_summary",
        "model/summary/text_summary",
    },
}


@pytest.mark.slow
def test_a_classification_run_writes_the_tags_it_wrote_before_tasks(train: TrainCLI) -> None:
    result = train(*TINY, "logging.progress_bar=false")
    assert result.returncode == 0, result.stderr
    tags = read_events(train.run_dir()).Tags()
    written = {kind: set(values) for kind, values in tags.items() if isinstance(values, list) and values}
    assert written == TAGS_BEFORE_TASKS
