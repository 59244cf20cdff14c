"""A real Trainer on synthetic data, built in the test process: for fast tests of the loop and its callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trainscope.config.groups.logging import LoggingConfig
from trainscope.config.groups.trainer import TrainerConfig
from trainscope.core.callback import Callback, CallbackList
from trainscope.data import build_data
from trainscope.engine.settings import TrainerSettings
from trainscope.engine.trainer import Trainer
from trainscope.models import MLP
from trainscope.tensorboard.writer import RunWriter

INPUT_SHAPE = [1, 8, 8]


def synthetic_data(root: Path, num_samples: int = 160, batch_size: int = 32) -> Any:
    """The `data=synthetic` data module on the CPU: 144 train images → 5 batches an epoch, 16 val images."""
    return build_data(
        dataset="synthetic",
        root=str(root),
        input_shape=INPUT_SHAPE,
        num_classes=4,
        batch_size=batch_size,
        val_fraction=0.1,
        split_seed=0,
        num_workers=0,
        loader="in_memory",
        download=False,
        mean=[0.5],
        std=[0.28],
        augment={"crop_padding": 0, "horizontal_flip": False},
        num_samples=num_samples,
        device=torch.device("cpu"),
        seed=0,
    )


def make_trainer(
    run_dir: Path, callbacks: dict[str, Callback] | None = None, batch_size: int = 32, **settings: Any
) -> Trainer:
    """A seeded Trainer (MLP, SGD, no scheduler) writing TensorBoard events into `run_dir`."""
    torch.manual_seed(0)
    data = synthetic_data(run_dir / "data", batch_size=batch_size)
    model = MLP(INPUT_SHAPE, num_classes=4, hidden_sizes=[16])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer_settings = TrainerSettings(
        TrainerConfig(**{"max_epochs": 2, **settings}),
        LoggingConfig(log_every_n_steps=2, progress_bar=False),
        monitor_metric="val/acc",
    )
    return Trainer(
        trainer_settings,
        model,
        data,
        optimizer,
        None,
        "epoch",
        CallbackList(callbacks or {}),
        RunWriter(run_dir, flush_secs=60),
        run_dir,
        torch.device("cpu"),
        config_hash="test",
    )


def composed_run_config(data_dir: Path, *overrides: str) -> Any:
    """The composed `train.py` config of `overrides`, resolvable outside a Hydra run (`paths.data_dir` set)."""
    from hydra import compose, initialize_config_dir

    from trainscope.config.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=[f"paths.data_dir={data_dir}", *overrides])


def train_in_process(run_dir: Path, data_dir: Path, *overrides: str) -> Any:
    """`python train.py <overrides>` in this process, into `run_dir` (with its `.hydra/config.yaml`, as a run
    directory has it); the RunResult."""
    from omegaconf import OmegaConf

    from trainscope.session.run import train

    cfg = composed_run_config(data_dir, "logging.progress_bar=false", *overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return train(cfg, run_dir)
