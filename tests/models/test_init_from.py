"""`model.init_from`: a run starts from another run's weights (a new head where the classes differ), and a source
that does not fit, or is not a weights-only file, is one line."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.image_tree import mnist_sample
from tests.helpers.in_process import train_in_process
from trainscope.core.errors import ConfigError
from trainscope.models import MLP, SmallCNN
from trainscope.models.init_from import load_initial_weights

TARGET_ACC = 0.9
# Digits 5-9 of the bundled MNIST sample as an image folder of 5 classes: a new task, so a new 5-way head.
FOLDER = ["data=image_folder", "data.channels=1", "data.image_size=28", "data.test_fraction=0", "data.val_fraction=0.2"]
FOLDER += ["data.batch_size=32", "data.mean=[0.1307]", "data.std=[0.3081]", "trainer.limit_train_batches=6"]
QUICK = ["model=mlp", "logging=minimal", "trainer.test=false", "optimizer.lr=0.003"]


def write_upper_digits(folder: Path, count: int) -> Path:
    images, labels = mnist_sample("train")
    chosen = np.flatnonzero(labels >= 5)[:count]
    for index in chosen:
        path = folder / f"digit{labels[index]}" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(path)
    return folder


def epochs_to(run_dir: Path, accuracy: float) -> float:
    """The first epoch whose val/acc reaches `accuracy` (inf: none did)."""
    history = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["trainer"]["history"]
    return next((epoch["epoch"] for epoch in history if epoch["val/acc"] >= accuracy), math.inf)


@pytest.mark.slow
def test_a_run_fine_tuned_from_another_runs_best_pt_reaches_the_target_sooner_and_its_frozen_backbone_stays(
    tmp_path: Path, data_dir: Path
) -> None:
    folder = write_upper_digits(tmp_path / "digits", 1000)
    source = tmp_path / "source"
    train_in_process(source, data_dir, *QUICK, "trainer.max_epochs=2", "trainer.limit_train_batches=40")
    scratch, tuned = tmp_path / "scratch", tmp_path / "tuned"
    target = [*QUICK, *FOLDER, f"data.root={folder}", "trainer.max_epochs=5"]
    train_in_process(scratch, data_dir, *target)
    train_in_process(tuned, data_dir, *target, f"model.init_from={source}", "finetune.freeze=backbone")

    from_scratch, fine_tuned = epochs_to(scratch, TARGET_ACC), epochs_to(tuned, TARGET_ACC)
    assert fine_tuned < from_scratch, f"val/acc {TARGET_ACC}: fine-tuned in {fine_tuned} epochs, scratch {from_scratch}"
    pretrained = torch.load(source / "checkpoints" / "best.pt", weights_only=True)["model"]
    trained = torch.load(tuned / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert torch.equal(trained["net.1.weight"], pretrained["net.1.weight"]), "the frozen backbone changed"
    assert torch.equal(trained["net.1.bias"], pretrained["net.1.bias"])
    assert trained["net.4.weight"].shape == (5, 128) and trained["net.4.weight"].abs().sum() > 0  # the new head trained
    assert json.loads((tuned / "metrics.json").read_text())["status"] == "completed"


def test_a_source_of_another_architecture_is_one_line_listing_the_first_mismatches(tmp_path: Path) -> None:
    checkpoint = tmp_path / "cnn.pt"
    torch.save(SmallCNN(input_shape=[1, 28, 28], num_classes=10).state_dict(), checkpoint)
    with pytest.raises(ConfigError) as refused:
        load_initial_weights(MLP(input_shape=[1, 28, 28], num_classes=10), str(checkpoint))
    message = str(refused.value)
    assert message.startswith(f"model.init_from={checkpoint} does not fit this model (MLP): ")
    assert "net.1.weight missing" in message and "features.0.weight unexpected" in message
    assert "\n" not in message


def test_a_head_of_another_shape_starts_from_zero_and_the_rest_loads(tmp_path: Path) -> None:
    source = MLP(input_shape=[1, 8, 8], num_classes=10, hidden_sizes=[16])
    checkpoint = tmp_path / "mlp.pt"
    torch.save({"model": source.state_dict(), "format": 1}, checkpoint)  # a trainscope checkpoint's layout
    model = MLP(input_shape=[1, 8, 8], num_classes=3, hidden_sizes=[16])
    load_initial_weights(model, str(checkpoint))
    assert torch.equal(model.net[1].weight, source.net[1].weight)
    assert not model.net[4].weight.any() and not model.net[4].bias.any()


class Payload:
    def __reduce__(self):  # what a malicious checkpoint does: run code when unpickled
        return (print, ("ran code",))


def test_a_file_that_is_not_weights_only_is_refused_without_running_it(tmp_path: Path, capsys) -> None:
    checkpoint = tmp_path / "evil.pt"
    checkpoint.write_bytes(pickle.dumps({"model": Payload()}, protocol=2))
    with pytest.raises(ConfigError, match="is corrupt or not a weights-only checkpoint"):
        load_initial_weights(MLP(input_shape=[1, 8, 8], num_classes=3), str(checkpoint))
    assert "ran code" not in capsys.readouterr().out


def test_a_directory_that_is_no_run_nor_model_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"is neither a run directory \(no .hydra/config.yaml\)"):
        load_initial_weights(MLP(input_shape=[1, 8, 8], num_classes=3), str(tmp_path))
