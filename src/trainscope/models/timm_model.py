"""`model=timm model.name=<any timm model>`: the timm model zoo, sized to the data.

timm is an optional dependency (`pip install 'trainscope[timm]'`), imported only when this model is built.
Pretrained weights are off by default: trainscope must train offline; `model.pretrained=true` downloads them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from torch import nn

from trainscope.core.errors import ConfigError, first_line


def timm_model(
    name: str, input_shape: Sequence[int], num_classes: int, pretrained: bool = False, **options: Any
) -> nn.Module:
    """`timm.create_model(name)` with `in_chans`/`num_classes` from the data; `options` go to timm as they are."""
    try:
        import timm
    except ImportError:
        raise ConfigError("model=timm needs the timm package: pip install 'trainscope[timm]'") from None
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else "; list them with python -c 'import timm; print(timm.list_models())'"
        )
        raise ConfigError(f"model.name={name!r} is not a timm model{hint}")
    try:
        return timm.create_model(
            name, pretrained=pretrained, in_chans=int(input_shape[0]), num_classes=int(num_classes), **options
        )
    except (OSError, RuntimeError) as error:
        if not pretrained:
            raise
        raise ConfigError(
            f"could not load pretrained weights for {name} ({first_line(error)}); "
            "they download from the Hugging Face Hub: check the network, or set model.pretrained=false"
        ) from None
