"""`model=hf model.name=<Hub name | folder>`: any Hugging Face `transformers` causal language model.

transformers is an optional dependency (`pip install 'trainscope[lm]'`), imported only when this model is built.
`model.pretrained=true` loads the weights (`from_pretrained`: from the Hub when online, from a folder offline);
`false` (the default) builds the architecture from its config alone (`AutoConfig` +
`AutoModelForCausalLM.from_config`), so a run trains offline from a `config.json`. Either way the module's
`forward(tokens [B, T])` returns the logits [B, T, vocab_size], as `model=gpt` does, so the loop, generation
and the checks never know which of the two they hold.

A run directory is untrusted input, and this class is built from one by `resume=`, `eval.py` and
`trainscope-generate`: nothing it loads may run code. So `trust_remote_code` is always false (a folder whose
config asks for its own modelling code is refused), weights load with `weights_only=True` (safetensors, or a
`.bin` unpickled without code), and `model.config` overrides only set attributes the architecture's config
already has: no key of it reaches `from_pretrained` as an argument.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from trainscope.config.hub import hub_load_error, hub_source
from trainscope.core.errors import ConfigError, first_line

log = logging.getLogger(__name__)

CONTEXT_LENGTH_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length")
"""Where transformers' configs keep the longest context: GPT-2 `n_positions`, Llama/BERT `max_position_embeddings`."""


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError("model=hf needs the transformers package: pip install 'trainscope[lm]'") from None
    return transformers


def context_length_key(config: Any) -> str | None:
    """The attribute of a transformers config that holds its context length, if it has one."""
    return next((key for key in CONTEXT_LENGTH_KEYS if isinstance(getattr(config, key, None), int)), None)


def _apply_overrides(config: Any, overrides: Mapping[str, Any]) -> None:
    """`model.config.<key>=value` on the architecture's config; a key it does not have is a typo, not a new one."""
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise ConfigError(
                f"model.config.{key} is not a setting of {type(config).__name__}; "
                f"see its config.json for the keys it takes"
            )
        setattr(config, key, value)


class HuggingFaceCausalLM(nn.Module):
    """A transformers causal LM behind trainscope's language-model interface: tokens in, logits out.

    `vocab_size` and `block_size` (null in `conf/model/hf.yaml`: the tokenizer's vocabulary and
    `data.block_size`) size a model built from its config; a pretrained model keeps its own sizes, and the run
    checks that the data fits them.
    """

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        vocab_size: int | None = None,
        block_size: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        transformers = _import_transformers()
        source = hub_source("model.name", name)
        try:
            model_config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=False)
        except (OSError, ValueError) as error:
            raise hub_load_error("model.name", source, "model config", error) from None
        _apply_overrides(model_config, dict(config or {}))
        length_key = context_length_key(model_config)
        if pretrained:
            try:
                self.model = transformers.AutoModelForCausalLM.from_pretrained(
                    source, config=model_config, trust_remote_code=False, weights_only=True
                )
            except (OSError, ValueError) as error:
                raise hub_load_error("model.name", source, "pretrained weights", error) from None
        else:
            if vocab_size is not None:
                model_config.vocab_size = int(vocab_size)
            if block_size is not None and length_key is not None:
                setattr(model_config, length_key, int(block_size))
            try:
                self.model = transformers.AutoModelForCausalLM.from_config(model_config, trust_remote_code=False)
            except ValueError as error:  # a config that is no causal LM (BERT's), or an impossible size
                raise ConfigError(
                    f"model.name={name} cannot be built as a causal language model ({first_line(error)})"
                ) from None
        self.name = name
        self.vocab_size = int(self.model.get_input_embeddings().num_embeddings)
        # Models with rotary or no positions have no hard limit; the data's block_size is then the context.
        limit = getattr(self.model.config, length_key) if length_key else block_size
        self.block_size = int(limit) if limit is not None else None
        log.info(
            "%s (%s, %s): %.2fM parameters",
            name,
            type(self.model).__name__,
            "pretrained" if pretrained else "from its config",
            sum(p.numel() for p in self.parameters()) / 1e6,
        )

    def forward(self, tokens: Tensor) -> Tensor:
        # use_cache=False: training and scoring never reuse the attention keys, so none are kept
        return self.model(input_ids=tokens, use_cache=False).logits
