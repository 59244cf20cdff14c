"""The `data` group, typed: one dataclass per kind of data option, each key written once (type, default, rule).

`data.dataset` picks the dataclass (`DATA_OPTIONS`), and the dataclass names the builder its YAML's `_target_`
is (`BUILDER`). An option accepts exactly its dataclass's keys: a key of no option is refused with the closest
one (`data.batchsize is not a key of data=mnist_sample; did you mean data.batch_size?`), a key of another
option is refused unless it is null (`data.num_samples only applies to data=synthetic, got 5 for mnist`).

Adding a data option (the recipe in docs/development.md): a dataclass here that subclasses the one whose keys
it shares and lists its `OPTIONS` and `BUILDER`, added to `DATA_CONFIGS`; `conf/data/<name>.yaml` setting its
keys; and the builder, which takes the keys as keywords and starts with
`<TheConfig>.for_option(keys, seed=seed, rank=rank, world_size=world_size)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from trainscope.config.rules import (
    ANYTHING,
    BOOLEAN,
    FRACTION,
    INPUT_SHAPE,
    INTEGER,
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    PATH,
    POSITIVE_INT,
    STRING,
    Rule,
    int_at_least,
    is_number,
    is_path,
    one_of,
)
from trainscope.config.typed import TypedGroup, key, runtime, section
from trainscope.core.errors import ConfigError

BUILD_DATA = "trainscope.data.build_data"
BUILD_CUSTOM_DATA = "trainscope.data.build_custom_data"
BUILD_TABLE_DATA = "trainscope.data.build_table_data"

CLASS = "class"  # int64 class indices [B]
FLOAT = "float"  # float32 values [B, targets]
MULTI_HOT = "multi_hot"  # float32 0/1 labels [B, labels]
TOKENS = "tokens"  # int64 next tokens [B, T] (a language model's inputs shifted by one)
ANY = "any"  # whatever the dataset returns (task=custom: the user's loss decides)
TARGET_KINDS = (CLASS, FLOAT, MULTI_HOT, TOKENS, ANY)
"""What a task needs from the data's targets (`trainscope.tasks.Task.targets`), handed to every data builder."""

Data = TypeVar("Data", bound="DataConfig")

LOADERS = ("auto", "in_memory", "dataloader")
ROOT = Rule("a directory path (set paths.data_dir)", is_path)
CHANNELS = one_of((1, 3), "1 (grayscale) or 3 (RGB) for data=image_folder")
NUM_CLASSES = int_at_least(2)
CLASS_NAMES = Rule("null or a list of class names", lambda value: value is None or isinstance(value, list))
COLUMNS = Rule(
    "a column name or a list of column names",
    lambda value: (
        (isinstance(value, str) and bool(value))
        or (
            isinstance(value, Sequence)
            and not isinstance(value, bytes)
            and bool(value)
            and all(isinstance(name, str) and name for name in value)
        )
    ),
)
CHANNEL_VALUES = Rule(
    "null or a list of numbers (one per channel)",
    lambda value: (
        value is None
        or (not isinstance(value, (str, bytes)) and isinstance(value, Sequence) and all(map(is_number, value)))
    ),
)


@dataclass(frozen=True)
class AugmentConfig(TypedGroup):
    """`data.augment`: what to augment; `crop_padding=0` and `horizontal_flip=False` mean no augmentation."""

    GROUP: ClassVar[str] = "data.augment"

    crop_padding: int = key(NON_NEGATIVE_INT, 0)  # pad, then crop a random window of the input size
    horizontal_flip: bool = key(BOOLEAN, False)

    @property
    def enabled(self) -> bool:
        return self.crop_padding > 0 or self.horizontal_flip


@dataclass(frozen=True, kw_only=True)
class DataConfig(TypedGroup):
    """The keys every data option has, and what the trainer adds (`seed`, this process's `rank`)."""

    GROUP: ClassVar[str] = "data"
    OPTIONS: ClassVar[tuple[str, ...]] = ()
    """The `data.dataset` values this dataclass describes."""
    BUILDER: ClassVar[str] = ""
    """The `_target_` of these options: the function that builds them."""

    dataset: str = key(STRING)
    batch_size: int = key(POSITIVE_INT)  # per process in a distributed run
    val_fraction: float = key(FRACTION)  # carved from train with split_seed; 0: no validation
    split_seed: int = key(INTEGER)
    seed: int = runtime(0, INTEGER, "trainer.seed")  # shuffle and augmentation
    rank: int = runtime(0, INTEGER, "rank")  # this process's shard of every split in a torchrun job
    world_size: int = runtime(1, POSITIVE_INT, "world_size")
    targets: str = runtime(CLASS, one_of(TARGET_KINDS), "the task's targets")  # trainscope.data.targets

    @classmethod
    def for_option(cls: type[Data], keys: Mapping[str, Any], **runtime_values: Any) -> Data:
        """The checked config of the option `keys` name (`dataset`), one of those `cls.BUILDER` builds: what a
        builder does first with the keywords it was called with."""
        return data_config_class(keys.get("dataset"), cls.BUILDER).from_config(keys, **runtime_values)  # type: ignore[return-value]

    @classmethod
    def owner(cls, values: Mapping[str, Any]) -> str:
        return f"a key of data={dataset_of(cls, values)}"

    @classmethod
    def undeclared_key(cls, name: str, value: Any, values: Mapping[str, Any]) -> bool:
        """A key of another data option is dropped when null (it is not set) and refused otherwise."""
        owners = [option for option, config in DATA_OPTIONS.items() if name in config.key_names()]
        if not owners:
            return super().undeclared_key(name, value, values)
        if value is not None:
            raise ConfigError(
                f"data.{name} only applies to data={', '.join(owners)}, got {value!r} for {dataset_of(cls, values)}"
            )
        return False


# ImageNet's statistics for RGB (what pretrained timm models expect), their average for grayscale.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def default_mean(channels: int) -> tuple[float, ...]:
    """`data.mean: null`: ImageNet's per-channel mean, or its average for other channel counts."""
    return _IMAGENET_MEAN if channels == 3 else (round(sum(_IMAGENET_MEAN) / 3, 4),) * channels


def default_std(channels: int) -> tuple[float, ...]:
    """`data.std: null`: ImageNet's per-channel std, or its average for other channel counts."""
    return _IMAGENET_STD if channels == 3 else (round(sum(_IMAGENET_STD) / 3, 4),) * channels


@dataclass(frozen=True, kw_only=True)
class ImagesConfig(DataConfig):
    """Images trainscope batches itself (built-in datasets, image folders, the user's Dataset): their shape,
    classes, normalization and augmentation."""

    root: Path = key(ROOT)
    input_shape: tuple[int, int, int] = key(INPUT_SHAPE)
    num_classes: int = key(NUM_CLASSES)
    num_workers: int = key(NON_NEGATIVE_INT)  # DataLoader workers, when batches come through one
    mean: tuple[float, ...] | None = key(CHANNEL_VALUES, None)  # null: default_stats
    std: tuple[float, ...] | None = key(CHANNEL_VALUES, None)
    augment: AugmentConfig = section(AugmentConfig)

    def default_stats(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """What `mean: null` / `std: null` stand for: ImageNet's values."""
        return default_mean(channels), default_std(channels)

    def check_together(self) -> None:
        """One mean and one positive std per input channel (nulls become `default_stats`)."""
        if self.input_shape is None:
            return  # data=custom before the shape is read from the dataset
        channels = self.input_shape[0]
        for name, default in zip(("mean", "std"), self.default_stats(channels), strict=True):
            values = getattr(self, name)
            if values is None:
                object.__setattr__(self, name, default)
            elif len(values) != channels:
                raise ConfigError(
                    f"data.{name} must be a list of {channels} numbers (one per channel), got {list(values)}"
                )
        if not all(value > 0 for value in self.std):
            raise ConfigError(f"data.std must be positive for every channel, got {list(self.std)}")


@dataclass(frozen=True, kw_only=True)
class ImageDataConfig(ImagesConfig):
    """The built-in image datasets, decoded once and batched on the device (or through a DataLoader)."""

    OPTIONS: ClassVar[tuple[str, ...]] = ("mnist", "fashion_mnist", "cifar10", "mnist_sample")
    BUILDER: ClassVar[str] = BUILD_DATA

    loader: str = key(one_of(LOADERS))  # auto: in memory when the images fit max_memory_gb
    download: bool = key(BOOLEAN)
    max_memory_gb: float = key(NON_NEGATIVE_NUMBER, 4.0)

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_gb * 1024**3)


@dataclass(frozen=True, kw_only=True)
class SyntheticDataConfig(ImageDataConfig):
    """`data=synthetic`: learnable random images generated from fixed seeds."""

    OPTIONS: ClassVar[tuple[str, ...]] = ("synthetic",)

    num_samples: int = key(POSITIVE_INT)  # train images; test gets a quarter as many


@dataclass(frozen=True, kw_only=True)
class ImageFolderConfig(ImageDataConfig):
    """`data=image_folder`: the user's images in torchvision's ImageFolder layout."""

    OPTIONS: ClassVar[tuple[str, ...]] = ("image_folder",)

    num_classes: int | None = key(NUM_CLASSES.or_null(" (count the class folders)"), None)
    image_size: int = key(POSITIVE_INT, 64)  # the YAML's input_shape reads it and channels
    channels: int = key(CHANNELS, 3)
    test_fraction: float = key(FRACTION, 0.0)  # used when there is no test/ folder
    skip_bad_files: bool = key(BOOLEAN, False)
    cache_dir: Path | None = key(ROOT.or_null(" (no decode cache)"), None)

    def check_together(self) -> None:
        CHANNELS.checked("data.channels", self.input_shape[0])
        check_held_out(self.test_fraction, self.val_fraction, "samples")
        super().check_together()


def check_held_out(test_fraction: float, val_fraction: float, what: str) -> None:
    """Validation and test together must leave something to train on."""
    if test_fraction + val_fraction >= 1:
        raise ConfigError(
            f"data.test_fraction must be a number in [0, 1) leaving training {what} next to "
            f"data.val_fraction={val_fraction}, got {test_fraction!r}"
        )


@dataclass(frozen=True, kw_only=True)
class CustomDataConfig(ImagesConfig):
    """`data=custom`: the user's own `torch.utils.data.Dataset`s, built by Hydra from `train`/`val`/`test`."""

    OPTIONS: ClassVar[tuple[str, ...]] = ("custom",)
    BUILDER: ClassVar[str] = BUILD_CUSTOM_DATA

    dataset: str = key(STRING, "custom")
    train: Any = key(ANYTHING)  # a Dataset, or all splits: (train, val, test) or {"train": ..., ...}
    val: Any = key(ANYTHING, None)  # null: val_fraction of train
    test: Any = key(ANYTHING, None)  # null: no test split
    input_shape: tuple[int, int, int] | None = key(INPUT_SHAPE.or_null(" (the first training image's)"), None)
    num_classes: int | None = key(NUM_CLASSES.or_null(" (from the dataset)"), None)
    class_names: list[str] | None = key(CLASS_NAMES, None)  # null: the dataset's `classes`, else class_0, ...

    def default_stats(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The user's transform normalized already: null shows the values as they are."""
        return (0.0,) * channels, (1.0,) * channels


@dataclass(frozen=True, kw_only=True)
class TableDataConfig(DataConfig):
    """`data=table`: a CSV file, one example per row (`data=diabetes`: the table shipped in the package)."""

    OPTIONS: ClassVar[tuple[str, ...]] = ("table", "diabetes")
    BUILDER: ClassVar[str] = BUILD_TABLE_DATA

    dataset: str = key(STRING, "table")
    path: Path | None = key(ROOT.or_null(" (the table shipped for data=diabetes)"), None)  # the CSV file
    target: Any = key(COLUMNS)  # one column, or a list (several targets, or a multi-label's labels)
    features: Any = key(COLUMNS.or_null(" (every other column)"), None)
    categorical: str = key(one_of(("onehot", "refuse")), "onehot")  # what a string feature column becomes
    missing: str = key(one_of(("refuse", "drop", "mean")), "refuse")  # empty / NA cells
    test_fraction: float = key(FRACTION, 0.0)
    input_shape: Any = key(ANYTHING, None)  # [features]: known once the table is read (model=mlp reads it)
    num_classes: Any = key(ANYTHING, None)  # a class-label target's classes: counted from the table

    def check_together(self) -> None:
        if self.dataset == "table" and self.path is None:
            raise ConfigError("data=table needs data.path: the CSV file to train on")
        check_held_out(self.test_fraction, self.val_fraction, "rows")
        super().check_together()


@dataclass(frozen=True, kw_only=True)
class TextDataConfig(DataConfig):
    """A UTF-8 text file or a folder of `.txt` files as blocks of tokens for a language model
    (`trainscope.data.text.build_text_data`); the last `val_fraction` (then `test_fraction`) of the token stream
    is held out."""

    OPTIONS: ClassVar[tuple[str, ...]] = ("text", "shakespeare_char")
    BUILDER: ClassVar[str] = "trainscope.data.build_text_data"

    path: Path | None = key(
        Rule("a text file or a folder of .txt files", is_path).or_null(" (data=shakespeare_char: the shipped copy)"),
        None,
    )
    tokenizer: str = key(
        Rule("char, a Hugging Face Hub name or a tokenizer folder", lambda v: isinstance(v, str) and bool(v)), "char"
    )
    block_size: int = key(POSITIVE_INT)  # tokens per training window; the model's context is at least this
    test_fraction: float = key(FRACTION, 0.0)
    cache_dir: Path | None = key(PATH.or_null(" (no token cache)"), None)

    def check_together(self) -> None:
        if self.dataset == "text" and self.path is None:
            raise ConfigError("data=text needs data.path: a UTF-8 text file or a folder of .txt files")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"data.val_fraction={self.val_fraction} and data.test_fraction={self.test_fraction} "
                "leave no text for training"
            )


DATA_CONFIGS: tuple[type[DataConfig], ...] = (
    ImageDataConfig,
    SyntheticDataConfig,
    ImageFolderConfig,
    CustomDataConfig,
    TableDataConfig,
    TextDataConfig,
)
"""Every data option's dataclass; `DATA_OPTIONS` maps each `data.dataset` value to its own."""

DATA_OPTIONS: dict[str, type[DataConfig]] = {option: config for config in DATA_CONFIGS for option in config.OPTIONS}

DATA_BUILDERS: frozenset[str] = frozenset(config.BUILDER for config in DATA_CONFIGS)
"""The `_target_`s of the data options trainscope builds (what a run directory's config may name)."""


def dataset_of(config: type[DataConfig], values: Mapping[str, Any]) -> str:
    return str(values.get("dataset", config.OPTIONS[0] if len(config.OPTIONS) == 1 else "?"))


def data_config_class(dataset: Any, builder: str) -> type[DataConfig]:
    """The dataclass of `data.dataset`, checked against the `builder` the config's `_target_` names."""
    if dataset is None:
        of_builder = [config for config in DATA_CONFIGS if builder == config.BUILDER]
        if len(of_builder) == 1:  # a builder of one option (build_custom_data) needs no `dataset`
            return of_builder[0]
    if dataset not in DATA_OPTIONS:
        raise ConfigError(f"data.dataset must be one of {', '.join(DATA_OPTIONS)}, got {dataset!r}")
    config = DATA_OPTIONS[dataset]
    if builder != config.BUILDER:
        raise ConfigError(f"data.dataset={dataset} needs data={dataset} (its _target_ is {config.BUILDER})")
    return config


def data_config(keys: Mapping[str, Any], builder: str, **runtime_values: Any) -> DataConfig:
    """The checked config of the data option `keys` describe (the keywords `builder` was called with)."""
    return data_config_class(keys.get("dataset"), builder).from_config(keys, **runtime_values)
