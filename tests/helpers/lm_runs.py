"""Tiny language-model runs for tests: a 1-layer, 32-wide GPT on the shipped Shakespeare, 16-token blocks."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from trainscope.config.paths import config_dir
from trainscope.config.resolvers import register_resolvers

TINY_LM = [
    "task=language_modeling",
    "model=gpt",
    "data=shakespeare_char",
    "model.n_layer=1",
    "model.n_head=2",
    "model.n_embd=32",
    "data.block_size=16",
    "data.batch_size=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=4",
    "trainer.seed=0",
    "optimizer=adamw",
    "logging.progress_bar=false",
    "logging.log_every_n_steps=5",
]
"""About 1 s of training on 2 cores: 20 steps of batch 8, validation on 4 batches."""


def compose_lm(data_dir: Path, *overrides: str, gpt_sizes: bool = True) -> DictConfig:
    """The config `python train.py <TINY_LM> <overrides>` composes, as the task function receives it
    (without TINY_LM's `model.*` sizes of model=gpt when `gpt_sizes` is false: another model's keys differ)."""
    register_resolvers()
    tiny = [item for item in TINY_LM if gpt_sizes or not item.startswith("model.")]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*tiny, f"data.cache_dir={data_dir}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
