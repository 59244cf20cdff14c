"""`task=language_modeling`: next-token prediction over token blocks [B, T]; loss, perplexity and tokens/s.

The model reads tokens [B, T] and returns logits [B, T, vocab]; the targets are the same text one token further
(`data=text`, `data=shakespeare_char`). The loss is the cross-entropy of every predicted token, averaged over the
tokens (`ignore_index` marks padding that counts for nothing), so `val/loss` is nanoGPT's number and `val/ppl`
its exponential. A model that knows nothing predicts every token alike: ln(vocabulary) is the health checks'
baseline.

Panels: at each validation, `logging.samples` writes the model's continuations of its prompts into
TensorBoard's Text tab (`trainscope.tensorboard.text`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainscope.config.groups.logging import LoggingConfig
from trainscope.core.callback import Callback
from trainscope.core.errors import ConfigError
from trainscope.core.view import DataFacts
from trainscope.data.targets import TOKENS
from trainscope.models.generation import Sampling, generate
from trainscope.tasks.base import Evaluator, Monitor, SumsEvaluator, Task, shape_text
from trainscope.tensorboard.samples import GeneratedSamples

IGNORE_INDEX = -100  # PyTorch's and Hugging Face's marker of a target that is padding


class LanguageModeling(Task):
    """Cross-entropy of logits [B, T, vocab] against the next tokens [B, T], averaged over the counted tokens."""

    name = "language_modeling"
    targets = TOKENS
    train_metric_names = ("ppl", "tokens_per_sec")
    train_statistic_count = 2  # (loss * tokens, tokens)
    headline = ("ppl",)

    def __init__(self, monitor: Mapping[str, Any] | Monitor | None = None, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(monitor or Monitor("val/loss", "min"))
        if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
            raise ConfigError(f"task.ignore_index must be an integer token id (-100: none), got {ignore_index!r}")
        self.ignore_index = ignore_index
        self.vocab_size = 0
        self.tokenizer: Any = None
        # The mean loss of the step being trained, kept by `loss` for `train_statistics`: the perplexity of a
        # logging window needs it as a token-weighted sum, and computing the cross-entropy twice costs a pass
        # over [B, T, vocab] logits.
        self._step_loss: Tensor | None = None

    # ------------------------------------------------------------------------------------------ set-up

    def bind(self, data: DataFacts) -> None:
        vocab_size = getattr(data, "vocab_size", None)
        if not isinstance(vocab_size, int):
            raise ConfigError(
                "task=language_modeling needs text data: data=text data.path=<file> or data=shakespeare_char"
            )
        self.vocab_size = vocab_size
        self.tokenizer = getattr(data, "tokenizer", None)
        self.baseline_loss = math.log(max(vocab_size, 2))  # a uniform guess over the vocabulary

    def check_batch(self, outputs: Tensor, targets: Any) -> None:
        if outputs.dim() != 3 or outputs.shape[:2] != targets.shape or outputs.shape[2] < self.vocab_size:
            raise ConfigError(
                f"model returns {shape_text(outputs.shape)}, task=language_modeling needs "
                f"[B, {targets.shape[1]}, at least {self.vocab_size}] (one logit per token of the vocabulary)"
            )

    # ------------------------------------------------------------------------------------------ per step

    def _token_losses(self, outputs: Tensor, targets: Tensor, reduction: str) -> Tensor:
        return F.cross_entropy(
            outputs.reshape(-1, outputs.shape[-1]),
            targets.reshape(-1),
            ignore_index=self.ignore_index,
            reduction=reduction,
        )

    def counted_tokens(self, targets: Tensor) -> Tensor:
        """The targets that count (not `ignore_index`), as a float device scalar."""
        return (targets != self.ignore_index).sum().float()

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        loss = self._token_losses(outputs, targets, "mean")
        self._step_loss = loss.detach().float()
        return loss

    def train_statistics(self, outputs: Tensor, targets: Tensor) -> tuple[Tensor, ...]:
        tokens = self.counted_tokens(targets)
        step_loss = self._step_loss if self._step_loss is not None else self._token_losses(outputs, targets, "mean")
        return step_loss * tokens, tokens

    def train_metrics(self, sums: Sequence[float], count: float, seconds: float) -> dict[str, float]:
        loss_sum, tokens = sums
        return {"ppl": perplexity(loss_sum / max(tokens, 1)), "tokens_per_sec": tokens / max(seconds, 1e-9)}

    def predictions(self, outputs: Tensor) -> Tensor:
        return outputs.argmax(dim=-1)

    def per_example_loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        losses = self._token_losses(outputs.float(), targets, "none").reshape(targets.shape)
        counted = (targets != self.ignore_index).sum(dim=1).clamp(min=1)
        return losses.sum(dim=1) / counted

    def caption(self, target: Tensor) -> str:
        if self.tokenizer is None:
            return super().caption(target)
        return repr(self.tokenizer.decode(target.flatten().tolist()[:40]))

    # ------------------------------------------------------------------------------------------ evaluation

    def evaluator(self, device: torch.device) -> Evaluator:
        def batch_sums(outputs: Tensor, targets: Tensor) -> Tensor:
            return torch.stack((self._token_losses(outputs.float(), targets, "sum"), self.counted_tokens(targets)))

        def read(sums: list[float]) -> dict[str, float]:
            loss_sum, tokens = sums
            loss = loss_sum / max(tokens, 1)
            return {"loss": loss, "ppl": perplexity(loss)}

        return SumsEvaluator(batch_sums, read)

    def metric_modes(self) -> dict[str, str]:
        return {"ppl": "min", "tokens_per_sec": "max"}

    def panels(self, logging: LoggingConfig) -> dict[str, Callback]:
        panels = super().panels(logging)  # the input grid switches itself off: tokens are no images
        if logging.samples.prompts and self.tokenizer is not None:
            samples = logging.samples
            sampling = Sampling(samples.max_new_tokens, float(samples.temperature), samples.top_k, samples.seed)
            panels["monitor/samples"] = GeneratedSamples(
                samples.prompts, self.tokenizer, lambda model, prompt: generate(model, prompt, sampling)
            )
        return panels


def perplexity(loss: float) -> float:
    """exp(loss), infinite rather than an OverflowError for a diverged model."""
    return math.exp(loss) if loss < 700 else math.inf
