"""`data=table`: a CSV table of numbers, one example per row; `data=diabetes` is the one shipped with trainscope.

    python train.py task=regression data=table data.path=houses.csv data.target=price model=mlp

`data.target` names the target column (or a list of them); `data.features` the input columns (null: every
other column). Numeric columns are used as they are; a string feature column is one-hot encoded
(`data.categorical=onehot`, one 0/1 column per value) or refused (`refuse`); a string target column holds class
labels (task=classification). Empty cells (and NA, NaN, null) are missing: refused unless `data.missing` says
`drop` (drop those rows) or `mean` (fill a feature with its training mean; rows with a missing target are
dropped); infinities are always refused. Rows are split into train/val/test with `val_fraction`,
`test_fraction` and `split_seed`, and the features are standardized with the training split's mean and
standard deviation, which every checkpoint keeps (`FeatureScaling`), so `eval.py` and `resume=` apply the same
ones. The table lives on the device as float32: batches are slices, as for the built-in image datasets.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainscope.config.groups.data import TableDataConfig
from trainscope.core.errors import CheckpointError, ConfigError, DataError
from trainscope.data.augment import AugmentConfig
from trainscope.data.batching import SplitSettings
from trainscope.data.build import DataModule, carve_indices
from trainscope.data.in_memory import TableBatchSource
from trainscope.data.targets import ANY, CLASS, FLOAT, MULTI_HOT, target_mismatch

log = logging.getLogger(__name__)

BUNDLED_TABLES = {"diabetes": Path(__file__).resolve().parent.parent / "resources" / "diabetes" / "diabetes.csv"}
"""Tables shipped in the package (`data=diabetes`): they train with no network and no path."""

MIN_EXAMPLES_PER_CLASS = 5
MAX_CLASSES_WITHOUT_EXAMPLES = 20
"""An integer target column with more than 20 distinct values and fewer than 5 rows per value on average is a
quantity (a count, a score in whole units), not class labels: task=classification refuses it."""

MAX_ONE_HOT_VALUES = 50
"""A string feature column with more distinct values than this and than half the rows is an identifier (a name,
an id), not a category: one-hot encoding it would make one feature per row."""

MISSING_CELLS = frozenset({"", "na", "nan", "null", "none", "n/a"})


@dataclass
class Column:
    """One column of the table: floats (NaN where missing) or strings (None where missing)."""

    name: str
    numbers: list[float] | None
    strings: list[str | None] | None

    @property
    def numeric(self) -> bool:
        return self.numbers is not None


def read_table(path: Path) -> list[Column]:
    """The CSV file's columns by header name; a column is numeric when every present cell parses as a number."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise DataError(f"data.path={path} does not exist; point data.path at a CSV file") from None
    except IsADirectoryError:
        raise DataError(f"data.path={path} is a directory; point data.path at a CSV file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read data.path={path} as a CSV table ({error})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise DataError(f"data.path={path} holds no rows under its header; a table needs a header and data rows")
    header = [name.strip() for name in rows[0]]
    if len(header) == 1 and any(separator in header[0] for separator in ";\t|"):
        raise DataError(
            f"data.path={path} reads as one column {header[0]!r}: a table is comma-separated; convert the file "
            "to commas"
        )
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates or not all(header):
        raise DataError(f"data.path={path} needs one distinct name per column in its header, got {rows[0]}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(
                f"data.path={path} line {number} has {len(row)} cells, its header {len(header)}; fix that line"
            )
    columns = []
    for index, name in enumerate(header):
        cells = [row[index].strip() for row in rows[1:]]
        numbers = _numbers(cells)
        strings = None if numbers is not None else [None if cell.lower() in MISSING_CELLS else cell for cell in cells]
        columns.append(Column(name, numbers, strings))
    return columns


def _numbers(cells: list[str]) -> list[float] | None:
    numbers = []
    for cell in cells:
        if cell.lower() in MISSING_CELLS:
            numbers.append(math.nan)
            continue
        try:
            numbers.append(float(cell))
        except ValueError:
            return None
    return numbers


def _names(value: Any, key: str) -> list[str]:
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"data.{key} must be a column name or a list of them, got {value!r}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"data.{key} names column {repeated[0]} twice")
    return names


class FeatureScaling:
    """The training split's feature means and standard deviations, and the sources they standardize.

    `load_state_dict` (a checkpoint's statistics) standardizes the table again with those, so a run resumed or
    evaluated on a table that changed since training still sees its features as training did.
    """

    def __init__(self, names: list[str], raw: torch.Tensor, train_rows: torch.Tensor) -> None:
        self.names = names
        self.raw = raw  # [rows, features] float64, on the CPU
        train = raw[train_rows]
        self.mean = train.mean(dim=0)
        std = train.std(dim=0, unbiased=False)
        self.std = torch.where(std > 0, std, torch.ones_like(std))  # a constant feature stays 0, not NaN
        self.sources: list[tuple[TableBatchSource, torch.Tensor]] = []

    def standardized(self, rows: torch.Tensor) -> torch.Tensor:
        return ((self.raw[rows] - self.mean) / self.std).float()

    def attach(self, source: TableBatchSource, rows: torch.Tensor) -> TableBatchSource:
        self.sources.append((source, rows))
        return source

    def state_dict(self) -> dict[str, Any]:
        return {"features": list(self.names), "feature_mean": self.mean, "feature_std": self.std}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["features"]) != self.names:
            raise CheckpointError(
                f"the checkpoint was trained on features {list(state['features'])}, the table now gives "
                f"{self.names}; use the table (and data.features) the run trained on"
            )
        self.mean, self.std = state["feature_mean"].double(), state["feature_std"].double()
        for source, rows in self.sources:
            source.images = self.standardized(rows).to(source.settings.device)


def build_table_data(
    *, device: torch.device | str, seed: int, rank: int = 0, world_size: int = 1, targets: str = FLOAT, **keys: Any
) -> DataModule:
    """The table at `data.path` (or the bundled `data.dataset`) as train/val/test sources holding the `targets`
    kind; `keys` are those of `conf/data/table.yaml` (`trainscope.config.groups.data.TableDataConfig`)."""
    config = TableDataConfig.for_option(keys, seed=seed, rank=rank, world_size=world_size, targets=targets)
    table = config.path if config.path is not None else BUNDLED_TABLES[config.dataset]
    columns = {column.name: column for column in read_table(table)}
    target_names = _names(config.target, "target")
    features = config.features
    feature_names = (
        [name for name in columns if name not in target_names] if features is None else _names(features, "features")
    )
    for key, names in (("target", target_names), ("features", feature_names)):
        unknown = [name for name in names if name not in columns]
        if unknown:
            raise ConfigError(f"data.{key}={unknown[0]} is not a column of {table}; its columns: {', '.join(columns)}")
    overlap = [name for name in feature_names if name in target_names]
    if overlap:
        raise ConfigError(f"data.features names the target column {overlap[0]}; a target cannot also be a feature")
    where = f"data.target={','.join(target_names)}"
    if not feature_names:
        raise ConfigError(f"{table} has no feature column besides {where}; name the inputs in data.features")
    target_values, class_names = _targets([columns[name] for name in target_names], config.targets, where)
    names, raw = _features([columns[name] for name in feature_names], config.categorical, table)

    keep = _rows_to_keep(raw, target_values, config.missing, table, feature_names, target_names)
    raw, target_values = raw[keep], target_values[keep]
    if len(raw) < 3:
        raise DataError(f"{table} keeps {len(raw)} rows; a table needs rows for training, validation and tests")
    train_rows, val_rows, test_rows = carve_indices(
        len(raw), config.val_fraction, config.test_fraction, config.split_seed
    )
    if config.missing == "mean":  # fill with the training mean: the held-out rows never lend their values
        fill = torch.nanmean(raw[train_rows], dim=0)
        raw = torch.where(raw.isnan(), fill.expand_as(raw), raw)
    scaling = FeatureScaling(names, raw, train_rows)
    target_device = torch.device(device)

    def source(rows: torch.Tensor, shuffle: bool) -> TableBatchSource:
        settings = SplitSettings(
            batch_size=config.batch_size, shuffle=shuffle, augment=AugmentConfig(), mean=(0.0,), std=(1.0,),
            seed=config.seed, device=target_device, rank=config.rank, world_size=config.world_size,
        )  # fmt: skip
        return scaling.attach(TableBatchSource(scaling.standardized(rows), target_values[rows], settings), rows)

    log.info(
        "%s: %d rows (%d train, %d val, %d test), %d features, target %s",
        table.name, len(raw), len(train_rows), len(val_rows), len(test_rows), len(names), ", ".join(target_names),
    )  # fmt: skip
    return DataModule(
        train=source(train_rows, True),
        val=source(val_rows, False),
        test=source(test_rows, False) if len(test_rows) else None,
        input_shape=(len(names),),
        num_classes=len(class_names),
        class_names=class_names,
        mean=(),
        std=(),
        target_names=[] if config.targets == CLASS else target_names,
        target_source=where,
        train_target_values=target_values[train_rows],
        preprocessing=scaling,
    )


def _targets(columns: list[Column], kind: str, where: str) -> tuple[torch.Tensor, list[str]]:
    """The target columns as the task reads them, and the class names of a class-label target."""
    strings = [column.name for column in columns if not column.numeric]
    if kind in (CLASS, ANY) and len(columns) == 1 and strings:
        values = columns[0].strings or []
        classes = sorted({value for value in values if value is not None})
        index = {name: position for position, name in enumerate(classes)}
        labels = [index[value] if value is not None else -1 for value in values]
        return torch.tensor(labels, dtype=torch.int64), classes
    if strings:
        raise target_mismatch(kind, f"data.target={strings[0]}", "strings", CLASS)
    numbers = torch.tensor([column.numbers for column in columns], dtype=torch.float64).T  # [rows, targets]
    present = numbers[~numbers.isnan().any(dim=1)]
    if kind == CLASS:
        if len(columns) != 1:
            raise ConfigError(f"task=classification needs one target column; {where} names {len(columns)}")
        if not torch.equal(present, present.round()):
            raise target_mismatch(CLASS, where, "floats", FLOAT)
        classes = sorted({int(value) for value in present.flatten().tolist()})
        if len(classes) > MAX_CLASSES_WITHOUT_EXAMPLES and len(present) < MIN_EXAMPLES_PER_CLASS * len(classes):
            holds = f"{len(classes)} distinct numbers in {len(present)} rows, a quantity rather than class labels"
            raise target_mismatch(CLASS, where, holds, FLOAT)
        index = {value: position for position, value in enumerate(classes)}
        labels = [index[int(value)] if not math.isnan(value) else -1 for value in numbers[:, 0].tolist()]
        return torch.tensor(labels, dtype=torch.int64), [str(value) for value in classes]
    if kind == MULTI_HOT:
        bad = present[(present != 0) & (present != 1)]
        if len(bad):
            raise target_mismatch(MULTI_HOT, where, f"{float(bad[0]):g}", FLOAT)
    return numbers.float(), []


def _features(columns: list[Column], categorical: str, table: Path) -> tuple[list[str], torch.Tensor]:
    """Feature names (a one-hot column is `<column>=<value>`) and their values [rows, features] in float64."""
    names: list[str] = []
    values: list[list[float]] = []
    for column in columns:
        if column.numeric:
            names.append(column.name)
            values.append(column.numbers or [])
            continue
        cells = column.strings or []
        if categorical == "refuse":
            example = next(cell for cell in cells if cell is not None)
            raise ConfigError(
                f"data.features: column {column.name} of {table} holds strings ({example!r}); drop it from "
                "data.features, or one-hot encode it with data.categorical=onehot"
            )
        values_seen = sorted({cell for cell in cells if cell is not None})
        if len(values_seen) > max(MAX_ONE_HOT_VALUES, len(cells) // 2):
            raise ConfigError(
                f"data.features: column {column.name} of {table} holds {len(values_seen)} distinct strings in "
                f"{len(cells)} rows, an identifier rather than a category; leave it out with data.features=[...]"
            )
        for value in values_seen:
            names.append(f"{column.name}={value}")
            values.append([math.nan if cell is None else float(cell == value) for cell in cells])
    return names, torch.tensor(values, dtype=torch.float64).T


def _rows_to_keep(
    raw: torch.Tensor,
    targets: torch.Tensor,
    missing: str,
    table: Path,
    feature_names: list[str],
    target_names: list[str],
) -> torch.Tensor:
    """Rows that go on: every row, once no value is infinite and missing values are allowed by `data.missing`."""
    target_missing = targets.isnan() if targets.is_floating_point() else targets < 0
    target_missing = target_missing.reshape(len(targets), -1).any(dim=1)
    for values, names in ((raw, feature_names), (targets.reshape(len(targets), -1), target_names)):
        if values.is_floating_point() and values.isinf().any():
            row, column = (values.isinf()).nonzero()[0].tolist()
            name = names[column] if len(names) == values.shape[1] else "a one-hot column"
            raise DataError(f"{table} holds an infinite value in column {name}, row {row + 1}; fix or drop that row")
    feature_missing = raw.isnan().any(dim=1)
    if missing == "refuse" and (feature_missing.any() or target_missing.any()):
        row = int((feature_missing | target_missing).nonzero()[0])
        columns = [names for names in (feature_names, target_names)]
        in_features = raw[row].isnan().nonzero().flatten().tolist()
        column = (
            columns[0][in_features[0]]
            if in_features and len(columns[0]) == raw.shape[1]
            else ("a target column" if not in_features else "a one-hot column")
        )
        count = int(raw.isnan().sum()) + int(target_missing.sum())
        raise DataError(
            f"{table} has {count} missing values (the first in column {column}, row {row + 1}); set "
            "data.missing=drop to drop those rows, or data.missing=mean to fill features with their training mean"
        )
    dropped = target_missing | (feature_missing if missing == "drop" else torch.zeros_like(feature_missing))
    if dropped.any():
        log.warning(
            "%s: dropping %d rows with missing values (data.missing=%s)", table.name, int(dropped.sum()), missing
        )
    return (~dropped).nonzero().flatten()
