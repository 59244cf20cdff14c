"""Sampling text from a language model: `generate()`, for `trainscope-generate` and the samples a run logs.

Any model whose `forward(tokens [B, T])` returns logits [B, T, V] works (`model=gpt`, `model=hf`, your own).
Each new token is drawn from the softmax of the last position's logits divided by `temperature` (0: always the
most likely token), among the `top_k` most likely when set. The context is cropped to the model's `block_size`
(its longest), so a continuation may be longer than the model's context.

Sampling draws from a generator of its own, seeded by `seed`: the same model, prompt and settings always give
the same text, and sampling in the middle of training leaves the run's random state (dropout, data order)
untouched, so a run that logs samples trains exactly as one that does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainscope.core.errors import ConfigError


@dataclass(frozen=True)
class Sampling:
    """How to continue a prompt; `checked` turns config values into one, or one line naming the bad key."""

    max_new_tokens: int = 200
    temperature: float = 1.0
    top_k: int | None = None
    seed: int = 0

    @classmethod
    def checked(
        cls, prefix: str = "", *, max_new_tokens: object, temperature: object, top_k: object, seed: object
    ) -> Sampling:
        def integer(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not integer(max_new_tokens) or max_new_tokens < 1:  # type: ignore[operator]
            raise ConfigError(f"{prefix}max_new_tokens must be a positive integer, got {max_new_tokens!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < 1e6:
            raise ConfigError(
                f"{prefix}temperature must be a number >= 0 (0: the most likely token), got {temperature!r}"
            )
        if top_k is not None and (not integer(top_k) or top_k < 1):  # type: ignore[operator]
            raise ConfigError(f"{prefix}top_k must be null or a positive integer, got {top_k!r}")
        if not integer(seed):
            raise ConfigError(f"{prefix}seed must be an integer, got {seed!r}")
        return cls(int(max_new_tokens), float(temperature), top_k, int(seed))  # type: ignore[arg-type]


def context_length(model: nn.Module) -> int | None:
    """The longest sequence the model takes (`block_size` of `model=gpt` and `model=hf`); None if it says none."""
    length = getattr(model, "block_size", None)
    return int(length) if isinstance(length, int) else None


@torch.no_grad()
def generate(model: nn.Module, prompt: Tensor, sampling: Sampling, block_size: int | None = None) -> Tensor:
    """`prompt` [B, T] (at least one token each) followed by `sampling.max_new_tokens` sampled tokens.

    The model is put in eval mode for the sampling and back in the mode it was in afterwards.
    """
    if prompt.ndim != 2 or prompt.shape[1] == 0:
        raise ConfigError("the prompt must hold at least one token")
    block_size = block_size or context_length(model)
    generator = torch.Generator(device=prompt.device).manual_seed(sampling.seed)
    was_training = model.training
    model.eval()
    try:
        tokens = prompt
        for _ in range(sampling.max_new_tokens):
            context = tokens if block_size is None else tokens[:, -block_size:]
            logits = model(context)[:, -1, :].float()
            if sampling.temperature == 0:
                next_token = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / sampling.temperature
                if sampling.top_k is not None and sampling.top_k < logits.shape[-1]:
                    kth_largest = torch.topk(logits, sampling.top_k).values[:, -1:]
                    logits = logits.masked_fill(logits < kth_largest, float("-inf"))
                next_token = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            tokens = torch.cat((tokens, next_token), dim=1)
        return tokens
    finally:
        model.train(was_training)
