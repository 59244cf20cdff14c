"""Generated text at every validation, in TensorBoard's Text tab: a user sees the model learn to write.

`logging.samples` names the prompts and how to sample (`trainscope.models.generation`). The samples draw from
a generator of their own, so a run that logs them trains exactly as one that does not; the same weights, prompt
and seed always give the same text (a resumed run logs what an uninterrupted one would have).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from trainscope.core.callback import Callback
from trainscope.core.errors import ConfigError, first_line
from trainscope.core.view import TrainerView

Continue = Callable[[nn.Module, Tensor], Tensor]
"""(model, prompt tokens [1, T]) -> the prompt and its continuation [1, T + new]: `generate` with the run's
`logging.samples` settings (`trainscope.tasks.LanguageModeling.panels` makes it)."""


class GeneratedSamples(Callback):
    """`samples/<i>` text entries: the continuation of prompt i, at every validation (rank 0 only)."""

    def __init__(self, prompts: Sequence[str], tokenizer: Any, continue_prompt: Continue) -> None:
        self.tokenizer = tokenizer
        self.continue_prompt = continue_prompt
        self.prompts = [(prompt, self._encode(index, prompt)) for index, prompt in enumerate(prompts)]

    def _encode(self, index: int, prompt: str) -> list[int]:
        try:
            tokens = self.tokenizer.encode(prompt)
        except Exception as error:  # a character the char vocabulary does not have: one line
            raise ConfigError(f"logging.samples.prompts[{index}]={prompt!r}: {first_line(error)}") from None
        if not tokens:
            raise ConfigError(f"logging.samples.prompts[{index}]={prompt!r} encodes to no token; use a longer prompt")
        return tokens

    def on_validation_end(self, trainer: TrainerView, metrics: dict[str, float]) -> None:
        if not trainer.distributed.is_main:
            return
        writer, step = trainer.tensorboard.writer, trainer.state.global_step
        for index, (prompt, tokens) in enumerate(self.prompts):
            prompt_tokens = torch.tensor([tokens], device=trainer.device)
            generated = self.continue_prompt(trainer.model, prompt_tokens)
            text = self.tokenizer.decode(generated[0].tolist())
            writer.add_text(f"samples/{index}", sample_markdown(prompt, text), step)


def sample_markdown(prompt: str, text: str) -> str:
    """The sample as TensorBoard's Markdown shows it: the prompt named, the text verbatim in a code block."""
    return f"prompt {prompt!r}:\n\n```\n{text}\n```"
