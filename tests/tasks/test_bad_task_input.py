"""A task that does not fit the data or the model is one line before any training: exit 2, no run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import TrainCLI, error_line

TABLES = {
    "missing.csv": "a,b,y\n1,2,3\n2,,4\n3,4,5\n4,5,6\n5,6,7\n6,7,8\n7,8,9\n",
    "infinite.csv": "a,b,y\n1,2,3\n2,inf,4\n3,4,5\n4,5,6\n5,6,7\n6,7,8\n7,8,9\n",
    "labels.csv": "a,colour,y,z\n1,red,1,0\n2,blue,0,2\n3,red,1,1\n4,blue,0,0\n5,red,1,1\n6,blue,0,1\n7,red,1,1\n",
}
WRONG_LOGITS = ["data=synthetic", "model=custom", "model._target_=tests.helpers.task_data.WrongLogits"]
DICTS = ["data=custom", "data.train._target_=tests.helpers.task_data.DictSamples"]
CASES = [
    (
        ["task=classification", "data=diabetes", "model=mlp"],
        "error: task=classification needs integer class targets; data.target=progression holds 214 distinct numbers "
        "in 442 rows, a quantity rather than class labels (use task=regression)",
    ),
    (
        ["task=regression", "data=diabetes", "model=mlp", "data.target=glucose"],
        "data.target=glucose is not a column of ",
    ),
    (["task=regression", "data=diabetes", "model=mlp", "data.target=glucose"], "its columns: age, sex, bmi, bp, s1"),
    (
        ["task=regression", "data=diabetes", "model=mlp", "model.num_classes=10"],
        "error: model (trainscope.models.mlp.MLP) returns [B, 10], task=regression with 1 target needs [B, 1]",
    ),
    (
        ["task=regression", "data=mnist_sample"],
        "error: task=regression needs numeric targets; data=mnist_sample holds class labels (use task=classification)",
    ),
    (
        ["task=regression", "task.loss=squared", "data=diabetes", "model=mlp"],
        "error: task.loss must be one of mse, l1, huber for task=regression, got 'squared'",
    ),
    (
        ["task=regression", "data=table", "data.path={tables}/missing.csv", "data.target=y", "model=mlp"],
        "missing.csv has 1 missing values (the first in column b, row 2); set data.missing=drop",
    ),
    (
        ["task=regression", "data=table", "data.path={tables}/infinite.csv", "data.target=y", "model=mlp"],
        "infinite.csv holds an infinite value in column b, row 2",
    ),
    (
        ["task=multilabel", "data=table", "data.path={tables}/labels.csv", "data.target=[y,z]", "model=mlp"],
        "error: task=multilabel needs 0/1 label targets; data.target=y,z holds 2 (use task=regression)",
    ),
    (
        ["task=multilabel", "data=custom", "data.train._target_=tests.helpers.task_data.DictSamples", "model=mlp"],
        "a batch is a dict with keys ['features', 'target', 'weight'] and task.target_key=None: set task.target_key",
    ),
    (
        [
            "task=regression",
            "task.target_key=target",
            *DICTS,
            "model=mlp",  # takes one tensor, not keyword inputs
        ],
        "error: the model (trainscope.models.mlp.MLP) failed on the first training batch "
        "(inputs features=[64, 8] float32, weight=[64] float32): TypeError: ",
    ),
    (
        [
            "task=regression",
            "data=table",
            "data.path={tables}/labels.csv",
            "data.target=y",
            "data.categorical=refuse",
            "model=mlp",
        ],  # fmt: skip
        "column colour of ",
    ),
    (
        ["task=regression", "data=table", "data.path={tables}/labels.csv", "data.target=colour", "model=mlp"],
        "error: task=regression needs numeric targets; data.target=colour holds strings (use task=classification)",
    ),
    (["task=custom", "data=diabetes", "model=mlp"], "error: task=custom needs task.loss._target_"),
    (  # a user's model: the IndexError "Target 3 is out of bounds" before
        [*WRONG_LOGITS, "data.num_classes=4"],
        "error: model (tests.helpers.task_data.WrongLogits) returns [B, 3], task=classification with 4 classes "
        "needs [B, 4] (one logit per class)",
    ),
    (  # a 1-D output: a RuntimeError about Long targets before
        [*WRONG_LOGITS, "data.num_classes=4", "+model.squeeze=true"],
        "error: model (tests.helpers.task_data.WrongLogits) returns [B], task=classification with 4 classes",
    ),
    (
        ["task=multilabel", "task.threshold=1.5", "data=diabetes", "model=mlp"],
        "error: task.threshold must be a number in (0, 1), got 1.5",
    ),
]


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    for name, text in TABLES.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "message"), CASES, ids=[f"case{index}" for index in range(len(CASES))])
def test_a_task_that_does_not_fit_is_one_line_and_writes_no_run(
    train: TrainCLI, tables: Path, overrides: list[str], message: str
) -> None:
    result = train(*(override.format(tables=tables) for override in overrides), "logging.progress_bar=false")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert message in error_line(result)
    assert not list((train.output_root / "runs").glob("*/*")), "no run directory is left behind"


@pytest.mark.slow
def test_a_dataset_that_raises_on_one_item_is_one_line_and_its_traceback_in_train_log(
    train: TrainCLI, tmp_path: Path
) -> None:
    """Hydra's "Error executing job" and a traceback before; the traceback is kept in the run's train.log."""
    run_dir = tmp_path / "run"  # named: a run directory the user chose is kept, with its train.log
    overrides = ["data=custom", "data.train._target_=tests.helpers.task_data.BrokenItem", "data.num_classes=4"]
    result = train(*overrides, "model=mlp", f"hydra.run.dir={run_dir}", "logging.progress_bar=false")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert error_line(result) == (
        "error: data.train (tests.helpers.task_data.BrokenItem) raised on item 7: OSError: cannot read scan_7.png"
    )
    log = (run_dir / "train.log").read_text()
    assert "Traceback" in log and "a second line the user need not read" in log
