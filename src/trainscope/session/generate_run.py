"""Sample text from a trained language model, from nothing but its run directory.

The run's saved config rebuilds the model (`build_model`, sized by the tokenizer the run saved in
`<run_dir>/tokenizer/` and its `data.block_size`), its best checkpoint supplies the weights, and `generate()`
continues the prompt. Generation only reads the run: it writes nothing there and takes no run lock, so it
also samples from a run that is still training (checkpoints are replaced atomically, so it reads the old one
or the new one, never half of one).

The run directory is untrusted input, as for `eval.py`: its config builds only the `_target_`s `check_targets`
allows, checkpoints load with `weights_only=True`, and tokenizers and models load without remote code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf, open_dict
from torch import nn

from trainscope.config.targets import check_targets
from trainscope.core.checkpoint_io import find_checkpoint, load_checkpoint, load_model_weights
from trainscope.core.errors import ConfigError, DataError
from trainscope.core.run_dir import TOKENIZER_DIR
from trainscope.data.tokenizer import Tokenizer, load_tokenizer
from trainscope.engine.build import select_device
from trainscope.models.build import build_model
from trainscope.models.generation import Sampling, generate
from trainscope.models.lora import with_adapters
from trainscope.session.evaluate_run import load_run_config

log = logging.getLogger(__name__)


@dataclass
class TrainedLanguageModel:
    """A run's model with its checkpoint's weights, in eval mode, and the tokenizer it was trained with."""

    model: nn.Module
    tokenizer: Tokenizer
    device: torch.device
    checkpoint: Path


def load_language_model(
    run_dir: Path, checkpoint: str = "best", device: str | None = None, allow_targets: Sequence[str] = ()
) -> TrainedLanguageModel:
    cfg = load_run_config(run_dir, device)
    check_targets(cfg, run_dir, allow_targets, "run")
    tokenizer = load_tokenizer(run_dir / TOKENIZER_DIR)
    checkpoint_path = find_checkpoint(run_dir, checkpoint)
    torch_device = select_device(str(cfg.trainer.device))
    if OmegaConf.select(cfg, "model.pretrained", default=None):
        with open_dict(cfg):
            cfg.model.pretrained = False  # the checkpoint holds every weight: no download of the original ones
    block_size = OmegaConf.select(cfg, "data.block_size", default=None)
    model = build_model(cfg.model, vocab_size=tokenizer.vocab_size, block_size=block_size)
    model = with_adapters(model, cfg.get("finetune"))  # a LoRA run's checkpoint holds its adapters
    state = load_checkpoint(checkpoint_path, torch_device)
    load_model_weights(model, state, checkpoint_path, run_dir)
    return TrainedLanguageModel(model.to(torch_device).eval(), tokenizer, torch_device, checkpoint_path)


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """The prompt's ids; a character a char tokenizer has no id for is named in one line."""
    try:
        tokens = tokenizer.encode(prompt)
    except DataError as error:
        raise ConfigError(f"prompt={prompt!r}: {error}") from None
    if not tokens:
        raise ConfigError(f"prompt={prompt!r} holds no token; pass at least one character, e.g. prompt='\\n'")
    return tokens


def continue_prompts(trained: TrainedLanguageModel, prompt: str, sampling: Sampling, num_samples: int) -> list[str]:
    """`num_samples` continuations of `prompt` (each starting with it), decoded with the run's tokenizer."""
    tokens = torch.tensor([encode_prompt(trained.tokenizer, prompt)] * num_samples, device=trained.device)
    generated = generate(trained.model, tokens, sampling)
    return [trained.tokenizer.decode(row.tolist()) for row in generated.cpu()]


def generate_from_run(
    run_dir: Path,
    prompt: str,
    sampling: Sampling,
    num_samples: int = 1,
    checkpoint: str = "best",
    device: str | None = None,
    allow_targets: Sequence[str] = (),
) -> list[str]:
    """`trainscope-generate`: continuations of `prompt` by the run's model."""
    trained = load_language_model(run_dir, checkpoint, device, allow_targets)
    log.info("%s: sampling from %s", run_dir, trained.checkpoint)
    return continue_prompts(trained, prompt, sampling, num_samples)
