"""Which parameters weight decay applies to: `optimizer.weight_decay_on`.

- `all`: every parameter, as `torch.optim` does when given `model.parameters()` (the default of `sgd` and `adam`).
- `matrices` (the default of `adamw`): only the weights that multiply activations, i.e. parameters with two or
  more dimensions (linear and convolution weights) that are not an embedding table. Biases, normalisation
  scales and shifts, and embeddings are not decayed: shrinking a bias or a LayerNorm gain toward zero is no
  regularisation (it only shifts or rescales a unit), and an embedding row is updated only when its token
  occurs, so decay would pull rare tokens toward zero between their updates. A tied output layer shares the
  embedding's matrix, so it is not decayed either. This is the rule of the GPT-2 and BERT recipes as
  Hugging Face applies it; nanoGPT also decays embeddings (every 2-D tensor), which for a char model makes no
  measurable difference.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from trainscope.config.groups.optimizer import WEIGHT_DECAY_ON
from trainscope.core.errors import ConfigError

log = logging.getLogger(__name__)


def parameter_groups(
    model: nn.Module, weight_decay_on: str, weight_decay: float, parameters: list[nn.Parameter] | None = None
) -> list[dict[str, Any]]:
    """The optimizer's parameter groups of `parameters` (default: the model's trainable ones): with `matrices`, one
    decayed group and one without decay."""
    if weight_decay_on not in WEIGHT_DECAY_ON:
        raise ConfigError(
            f"optimizer.weight_decay_on must be one of {', '.join(WEIGHT_DECAY_ON)}, got {weight_decay_on!r}"
        )
    trainable = parameters
    if trainable is None:
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]  # each tied one once
    if weight_decay_on == "all":
        return [{"params": trainable}]
    embeddings = {id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)}
    decayed = [p for p in trainable if p.ndim >= 2 and id(p) not in embeddings]
    kept = [p for p in trainable if p.ndim < 2 or id(p) in embeddings]
    log.info(
        "weight decay %g on %d matrices (%d parameters); none on %d biases, norms and embeddings (%d parameters)",
        weight_decay,
        len(decayed),
        sum(p.numel() for p in decayed),
        len(kept),
        sum(p.numel() for p in kept),
    )
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": kept, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]
