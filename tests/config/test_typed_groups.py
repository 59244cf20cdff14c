"""The typed config groups (`trainscope.config.groups`): each key written once, unknown keys refused in one line.

In-process checks of the composed config (what `validate_config` does at the entrypoint) and of the builders'
own keywords, then `python train.py` for the two ways a user mistypes a key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tests.helpers.cli import REPO_ROOT, TINY, TrainCLI, error_line
from tests.helpers.data import data_kwargs
from trainscope.config.groups.data import DATA_CONFIGS, DATA_OPTIONS, AugmentConfig, ImageDataConfig
from trainscope.config.groups.finetune import FinetuneConfig
from trainscope.config.groups.logging import LoggingConfig
from trainscope.config.groups.optimizer import OptimizerConfig, SchedulerConfig
from trainscope.config.groups.trainer import TrainerConfig
from trainscope.config.resolvers import register_resolvers
from trainscope.config.resumable import USER_RESUMABLE_KEYS
from trainscope.config.rules import Rule
from trainscope.config.schema import TYPED_GROUP_KEYS, validate_config
from trainscope.config.typed import RULE, TARGET_DEFAULT, TypedGroup
from trainscope.config.yaml_files import load_yaml
from trainscope.core.errors import ConfigError
from trainscope.data import build_custom_data, build_data

CONF = REPO_ROOT / "conf"
DATA_OPTION_FILES = sorted(path.stem for path in (CONF / "data").glob("*.yaml"))
ALL_GROUPS = [
    *DATA_CONFIGS,
    AugmentConfig,
    LoggingConfig,
    TrainerConfig,
    FinetuneConfig,
    OptimizerConfig,
    SchedulerConfig,
]
NEEDS = {  # what an option leaves to the command line (`???`)
    "image_folder": ["data.root=/tmp/images"],
    "custom": ["data.train._target_=examples.shapes_dataset.Shapes"],
    "table": ["data.path=/tmp/table.csv", "data.target=y"],
    "text": ["data.path=/tmp/corpus.txt", "task=language_modeling"],
    "shakespeare_char": ["task=language_modeling"],
}


@pytest.fixture
def composed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The composed `train.yaml` with `overrides`, as the entrypoint sees it (paths.data_dir resolvable)."""
    monkeypatch.setenv("TRAINSCOPE_DATA_DIR", str(tmp_path / "data"))
    register_resolvers()

    def compose_with(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="train", overrides=list(overrides))

    return compose_with


def refusal(cfg: DictConfig) -> str:
    with pytest.raises(ConfigError) as raised:
        validate_config(cfg)
    return str(raised.value)


# ---------------------------------------------------------------- every option and every default


def test_every_data_option_has_a_dataclass_and_its_yaml_passes_it(composed) -> None:
    assert set(DATA_OPTION_FILES) == set(DATA_OPTIONS)
    for option in DATA_OPTION_FILES:
        validate_config(composed(f"data={option}", *NEEDS.get(option, [])))  # no unknown key, every value passes


@pytest.mark.parametrize("group", ALL_GROUPS, ids=lambda group: group.__name__)
def test_every_key_has_a_rule_and_its_default_passes_it(group: type[TypedGroup]) -> None:
    for field in dataclasses.fields(group):
        rule: Rule | None = field.metadata.get(RULE)
        assert rule is not None, f"{group.__name__}.{field.name} has no rule"
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if default not in (dataclasses.MISSING, TARGET_DEFAULT):
            assert rule.check(default), f"{group.__name__}.{field.name} default {default!r} breaks {rule.accepts}"


@pytest.mark.parametrize("group", [TrainerConfig, LoggingConfig, FinetuneConfig], ids=lambda group: group.GROUP)
def test_the_default_option_sets_the_dataclass_defaults(group: type[TypedGroup]) -> None:
    """`conf/<group>/default.yaml` must spell out every key (Hydra overrides only what it holds); its values are
    the dataclass's defaults, so a key an option leaves out behaves as in the default option."""
    assert load_yaml(CONF / group.GROUP / "default.yaml") == dataclasses.asdict(group())


@pytest.mark.parametrize(
    ("group", "options"),
    [(LoggingConfig, ["default", "minimal", "full"]), (TrainerConfig, ["default"])],
    ids=["logging", "trainer"],
)
def test_every_option_of_a_typed_group_passes_it(group: type[TypedGroup], options: list[str]) -> None:
    assert sorted(path.stem for path in (CONF / group.GROUP).glob("*.yaml")) == sorted(options)
    for option in options:
        group.from_config(load_yaml(CONF / group.GROUP / f"{option}.yaml"))


def test_every_resumable_key_of_a_typed_group_is_one_of_its_keys() -> None:
    """A renamed key would silently stop being resumable: `config/resumable.py` names keys that exist."""
    keys = {f"{group}.{name}" for group, names in TYPED_GROUP_KEYS.items() for name in names}
    named = [pattern for pattern in USER_RESUMABLE_KEYS if pattern.split(".")[0] in ("data", "trainer")]
    assert named and all(pattern in keys for pattern in named), sorted(set(named) - keys)


# ---------------------------------------------------------------- the composed config, at the entrypoint


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+data.batchsize=32"], "data.batchsize is not a key of data=mnist_sample; did you mean data.batch_size?"),
        (
            ["data=cifar10", "+data.colour=1"],
            "data.colour is not a key of data=cifar10; its keys: augment, batch_size, dataset, download, "
            "input_shape, loader, max_memory_gb, mean, num_classes, num_workers, root, split_seed, std, val_fraction",
        ),
        (["+data.num_samples=5"], "data.num_samples only applies to data=synthetic, got 5 for mnist_sample"),
        (
            ["+data.test_fraction=0.2"],
            "data.test_fraction only applies to data=image_folder, table, diabetes, text, shakespeare_char, got 0.2 "
            "for mnist_sample",
        ),
        (
            ["+data.augment.flip=true"],
            "data.augment.flip is not a data.augment key; its keys: crop_padding, horizontal_flip",
        ),
        (
            ["data=custom", "data.train._target_=examples.shapes_dataset.Shapes", "+data.loader=auto"],
            "data.loader only applies to data=mnist, fashion_mnist, cifar10, mnist_sample, synthetic, image_folder, "
            "got 'auto' for custom",
        ),
    ],
    ids=["close_key", "no_close_key", "other_option_key", "image_folder_key", "nested_key", "custom_option"],
)
def test_an_unknown_data_key_is_one_line(composed, overrides: list[str], message: str) -> None:
    assert refusal(composed(*overrides)) == message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=abc", "data.batch_size must be a positive integer, got 'abc'"),
        ("data.download=maybe", "data.download must be true or false, got 'maybe'"),
        ("data.val_fraction=1.5", "data.val_fraction must be a number in [0, 1), got 1.5"),
        ("data.augment.crop_padding=-2", "data.augment.crop_padding must be a non-negative integer, got -2"),
        ("data.loader=fast", "data.loader must be one of auto, in_memory, dataloader, got 'fast'"),
        (
            "data.dataset=imagenet",
            "data.dataset must be one of mnist, fashion_mnist, cifar10, mnist_sample, "
            "synthetic, image_folder, custom, table, diabetes, text, shakespeare_char, got 'imagenet'",
        ),  # fmt: skip
        (
            "data.dataset=custom",
            "data.dataset=custom needs data=custom (its _target_ is trainscope.data.build_custom_data)",
        ),  # fmt: skip
        ("~data.loader", "data.loader must be set to one of auto, in_memory, dataloader"),
    ],
    ids=[
        "wrong_type",
        "not_a_bool",
        "out_of_range",
        "nested_out_of_range",
        "not_a_choice",
        "unknown_dataset",
        "wrong_builder",
        "required_key_missing",
    ],  # fmt: skip
)
def test_a_bad_data_value_is_one_line(composed, override: str, message: str) -> None:
    assert refusal(composed(override)) == message


def test_a_null_key_of_another_option_is_not_set(composed) -> None:
    validate_config(composed("+data.num_samples=null", "+data.cache_dir=null"))


def test_the_users_own_data_builder_takes_its_own_keys(composed) -> None:
    validate_config(composed("data._target_=my_package.build_my_data", "+data.anything=1", "data.batch_size=abc"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+trainer.gpus=1"],
            "trainer.gpus is not a trainer key; its keys: accumulate_grad_batches, channels_last, compile, "
            "cudnn_benchmark, deterministic, device, devices, grad_clip, limit_train_batches, limit_val_batches, "
            "max_epochs, max_steps, precision, seed, test, val_check_interval",
        ),  # fmt: skip
        (["trainer.devices=0"], "trainer.devices must be a positive integer (processes on this machine), got 0"),
        (["trainer.channels_last=maybe"], "trainer.channels_last must be true or false, got 'maybe'"),
        (
            ["trainer.limit_train_batches=1.5"],
            "trainer.limit_train_batches must be null, a positive integer or a fraction in (0, 1], got 1.5",
        ),  # fmt: skip
        (["+logging.num_image=4"], "logging.num_image is not a logging key; did you mean logging.num_images?"),
        (["logging.flush_secs=0"], "logging.flush_secs must be a positive number, got 0"),
        (["logging.progress_bar=sometimes"], "logging.progress_bar must be true or false, got 'sometimes'"),
        (["+optimizer.lrr=0.1"], "optimizer.lrr is not an argument of torch.optim.Adam; did you mean optimizer.lr?"),
        (["optimizer=sgd", "optimizer.momentum=1.0"], "optimizer.momentum must be a number in [0, 1), got 1.0"),
        (["optimizer.weight_decay=-1"], "optimizer.weight_decay must be a number >= 0, got -1"),
        (
            ["scheduler=cosine", "+scheduler.tmax=3"],
            "scheduler.tmax is not an argument of torch.optim.lr_scheduler.CosineAnnealingLR; "
            "did you mean scheduler.T_max?",
        ),  # fmt: skip
        (["scheduler=step", "scheduler.interval=batch"], "scheduler.interval must be 'epoch' or 'step', got 'batch'"),
    ],
    ids=[
        "trainer_unknown",
        "trainer_range",
        "trainer_type",
        "trainer_fraction",
        "logging_unknown",
        "logging_range",
        "logging_type",
        "optimizer_unknown",
        "optimizer_range",
        "optimizer_negative",
        "scheduler_unknown",
        "scheduler_choice",
    ],  # fmt: skip
)
def test_a_bad_trainer_logging_optimizer_or_scheduler_key_is_one_line(
    composed, overrides: list[str], message: str
) -> None:
    assert refusal(composed(*overrides)) == message


def test_a_target_that_takes_any_keyword_or_does_not_import_is_left_to_its_builder(composed) -> None:
    validate_config(composed("optimizer._target_=argparse.Namespace", "+optimizer.gamma=1"))  # Namespace(**kwargs)
    validate_config(composed("optimizer._target_=no_such_module.Optimizer", "+optimizer.gamma=1"))


def test_typed_groups_read_what_the_yaml_leaves_out_from_their_defaults(composed) -> None:
    logging = LoggingConfig.from_config(composed("~logging.num_images", "~logging.text").logging)
    assert logging.num_images == 16 and logging.text is True
    trainer = TrainerConfig.from_config(composed("~trainer.devices", "trainer.grad_clip=1").trainer)
    assert trainer.devices == 1 and trainer.grad_clip == 1.0 and isinstance(trainer.grad_clip, float)


# ---------------------------------------------------------------- the builders' own keywords (notebooks, eval.py)


def test_build_data_refuses_a_keyword_it_does_not_have(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        build_data(**data_kwargs(tmp_path, batchsize=16))
    assert str(raised.value) == "data.batchsize is not a key of data=synthetic; did you mean data.batch_size?"


def test_build_data_names_a_missing_key(tmp_path: Path) -> None:
    kwargs = data_kwargs(tmp_path)
    del kwargs["num_samples"]
    with pytest.raises(ConfigError, match=r"^data\.num_samples must be set to a positive integer$"):
        build_data(**kwargs)


def test_build_custom_data_refuses_a_keyword_it_does_not_have() -> None:
    train = torch.utils.data.TensorDataset(torch.rand(8, 1, 4, 4), torch.arange(8) % 2)
    with pytest.raises(ConfigError) as raised:
        build_custom_data(
            train=train, root=".", batch_size=4, val_fraction=0.25, split_seed=0, num_workers=0, num_worker=2,
            device="cpu", seed=0,
        )  # fmt: skip
    assert str(raised.value) == "data.num_worker is not a key of data=custom; did you mean data.num_workers?"


def test_a_checked_config_is_typed_and_checked_again_when_replaced(tmp_path: Path) -> None:
    keys = {key: value for key, value in data_kwargs(tmp_path, "mnist").items() if key not in ("device", "seed")}
    config = ImageDataConfig.for_option({**keys, "max_memory_gb": 1, "root": "~/data"}, seed=3)
    assert config.max_memory_gb == 1.0 and isinstance(config.max_memory_gb, float)
    assert config.root == Path("~/data").expanduser() and config.input_shape == (1, 28, 28)
    assert config.mean == (0.1307,) and config.seed == 3
    with pytest.raises(ConfigError, match=r"^data\.batch_size must be a positive integer, got 0$"):
        dataclasses.replace(config, batch_size=0)


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+data.batchsize=32", "error: data.batchsize is not a key of data=synthetic; did you mean data.batch_size?"),
        (  # Hydra refuses it first (the YAML has no such key): its message, with the key it meant
            "data.batchsize=32",
            "error: Could not override 'data.batchsize'; To append to your config use +data.batchsize=32; "
            "Key 'batchsize' is not in struct; did you mean data.batch_size?",
        ),
    ],
    ids=["plus", "no_plus"],
)
def test_a_mistyped_data_key_on_the_command_line_is_one_line_and_writes_nothing(
    train: TrainCLI, override: str, message: str
) -> None:
    result = train(*TINY, override)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert error_line(result) == message
    runs = train.output_root / "runs"
    assert not runs.exists() or not any(runs.rglob("*")), "no run directory is left behind"


def test_a_value_that_does_not_resolve_is_one_line(train: TrainCLI, tmp_path: Path) -> None:
    # A named run directory: an auto-named one would put the `${...}` of the override into its own name.
    result = train(*TINY, f"hydra.run.dir={tmp_path / 'run'}", "data.root=${oc.env:TRAINSCOPE_TEST_UNSET}")
    assert result.returncode == 2
    assert error_line(result) == (
        "error: cannot resolve data.root=${oc.env:TRAINSCOPE_TEST_UNSET}: Environment variable "
        "'TRAINSCOPE_TEST_UNSET' not found; export that variable, or give it a default: ${oc.env:NAME,default}"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()
