"""`data=table`: a CSV file as batches of standardized features, its targets as the task reads them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import TrainCLI, resume_cli, run_script
from trainscope.core.errors import CheckpointError, ConfigError, DataError
from trainscope.data import build_table_data
from trainscope.data.build import carve_indices
from trainscope.data.targets import CLASS, FLOAT


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def table(path: Path, **options: object) -> object:
    settings = {"target": "y", "batch_size": 8, "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0}
    return build_table_data(path=str(path), device="cpu", seed=0, **{**settings, **options})


def rows(count: int = 50) -> list[list[object]]:
    return [[index, index % 7, ["red", "green", "blue"][index % 3], 2 * index + 1] for index in range(count)]


def test_features_are_standardized_with_the_training_split_and_strings_one_hot(tmp_path: Path) -> None:
    data = table(write_csv(tmp_path / "t.csv", ["a", "b", "colour", "y"], rows()))
    assert data.input_shape == (5,) and not data.image_inputs
    assert data.preprocessing.names == ["a", "b", "colour=blue", "colour=green", "colour=red"]
    train = torch.cat([inputs for inputs, _ in data.train])
    assert train.mean(dim=0).abs().max() < 1e-5 and (train.std(dim=0, unbiased=False) - 1).abs().max() < 1e-5
    test = torch.cat([inputs for inputs, _ in data.test])
    assert test.mean(dim=0).abs().max() > 0.01, "held-out rows are scaled by the training split, not their own"
    _, targets = next(iter(data.train))
    assert targets.dtype == torch.float32 and targets.shape == (8, 1)
    assert data.target_names == ["y"] and data.target_source == "data.target=y"


def test_a_string_target_is_class_labels_for_classification(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], [[row[0], row[1], row[2]] for row in rows()])
    data = table(path, targets=CLASS)
    assert data.class_names == ["blue", "green", "red"] and data.num_classes == 3
    _, labels = next(iter(data.train))
    assert labels.dtype == torch.int64 and labels.shape == (8,)


def test_missing_values_are_dropped_or_filled_with_the_training_mean(tmp_path: Path) -> None:
    cells = [[index, "" if index in (3, 10) else index * 2, index] for index in range(40)]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], cells)
    dropped = table(path, missing="drop", targets=FLOAT)
    assert sum(source.num_samples for source in (dropped.train, dropped.val, dropped.test)) == 38
    filled = table(path, missing="mean", targets=FLOAT)
    raw = filled.preprocessing.raw
    train_rows, _, _ = carve_indices(40, 0.2, 0.2, 0)
    present = [index * 2.0 for index in train_rows.tolist() if index not in (3, 10)]
    assert raw[3, 1] == pytest.approx(sum(present) / len(present)) == raw[10, 1]


def test_a_checkpoint_keeps_the_scaling_the_model_was_trained_with(tmp_path: Path) -> None:
    trained = table(write_csv(tmp_path / "a.csv", ["a", "b", "colour", "y"], rows()))
    state = trained.state_dict()
    changed = [[row[0] * 10, row[1], row[2], row[3]] for row in rows()]
    later = table(write_csv(tmp_path / "b.csv", ["a", "b", "colour", "y"], changed))
    later.load_state_dict(state)
    inputs, _ = next(iter(later.val))
    raw = later.preprocessing.raw[later.preprocessing.sources[1][1][:8]]
    assert torch.allclose(inputs, ((raw - state["feature_mean"]) / state["feature_std"]).float())
    renamed = table(write_csv(tmp_path / "c.csv", ["a", "c", "colour", "y"], rows()))
    with pytest.raises(CheckpointError, match=r"trained on features \['a', 'b', .*the table now gives \['a', 'c'"):
        renamed.load_state_dict(state)


@pytest.mark.slow
def test_eval_and_resume_apply_the_checkpoint_scaling_to_an_edited_table(train: TrainCLI, tmp_path: Path) -> None:
    data = [[index / 10, (index * 7) % 11, 3 * index / 10 + (index * 7) % 11] for index in range(120)]
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], data)
    args = ["task=regression", "data=table", f"data.path={path}", "data.target=y", "model=mlp", "trainer.max_epochs=2"]
    assert (result := train(*args, "logging.progress_bar=false")).returncode == 0, result.stderr[-2000:]
    run_dir = train.run_dir()
    trained = json.loads((run_dir / "metrics.json").read_text())["test"]
    train_rows, _, _ = carve_indices(120, 0.15, 0.15, 0)
    for row in train_rows.tolist():  # the training rows change, and with them their statistics; test rows do not
        data[row] = [data[row][0] * 5 + 3, data[row][1] * 2, data[row][2]]
    write_csv(path, ["a", "b", "y"], data)
    evaluated = run_script("eval.py", [f"run={run_dir}"], train.output_root, train.data_dir)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == pytest.approx(trained, rel=1e-5)
    resumed = resume_cli(run_dir, train.data_dir, "trainer.max_epochs=3")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 3


@pytest.mark.parametrize(
    ("text", "target", "error", "message"),
    [
        ("a;b;y\n1;2;3\n", "y", DataError, r"reads as one column 'a;b;y': a table is comma-separated"),
        ("name,a,y\n" + "".join(f"p{i},{i},{i}\n" for i in range(120)), "y", ConfigError, "an identifier rather"),
        ("a,y\n1,2\n3,4\n5,6\n", ["y", "y"], ConfigError, "data.target names column y twice"),
        ("a,y\n1,2\n3,4\n5\n", "y", DataError, "line 4 has 1 cells, its header 2"),
        ("a,a,y\n1,2,3\n", "y", DataError, "one distinct name per column"),
        ("y\n1\n2\n3\n", "y", ConfigError, "no feature column besides data.target=y"),
        ("a,y\n", "y", DataError, "holds no rows under its header"),
    ],
)
def test_a_table_that_cannot_be_read_as_examples_is_one_line(
    tmp_path: Path, text: str, target: object, error: type, message: str
) -> None:
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(error, match=message):
        table(tmp_path / "t.csv", target=target)
