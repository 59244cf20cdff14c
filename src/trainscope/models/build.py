"""`build_model`: any `nn.Module` from the `model` config, given what the data knows about itself.

Built-in models, timm models, language models and the user's own module (`model=custom
model._target_=my_pkg.MyNet`) all come through here. The data's facts (`input_shape` and `num_classes` of
images, `vocab_size` and `block_size` of text) are passed when the constructor takes them and the config leaves
them null, so a model config never has to repeat what the data already knows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from trainscope.config.arguments import keyword_parameters
from trainscope.core.errors import ConfigError, TrainscopeError, first_line

DATA_ARGUMENTS = ("input_shape", "num_classes", "vocab_size", "block_size")


def _target(target: str) -> Callable[..., Any]:
    try:
        return get_object(target)
    except Exception as error:  # ImportError, AttributeError, ...: Hydra wraps them all
        cause = error.__cause__ or error
        raise ConfigError(
            f"model._target_={target} cannot be imported ({first_line(cause)}); check the name and PYTHONPATH"
        ) from None


def build_model(
    model_cfg: DictConfig,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    vocab_size: int | None = None,
    block_size: int | None = None,
) -> nn.Module:
    """Instantiate `model_cfg`, filling its null/absent `DATA_ARGUMENTS` from the data's values given here."""
    options: dict[str, Any] = OmegaConf.to_container(model_cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
    options.pop("init_from", None)  # trainscope's own key: the weights to start from (`trainscope.models.init_from`)
    target = options.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigError("model._target_ must name an nn.Module class or a function returning one")
    factory = _target(target)
    parameters = keyword_parameters(factory)
    unknown = [key for key in options if not key.startswith("_") and not parameters.accepts(key)]
    if unknown:
        raise ConfigError(
            f"model._target_={target} does not take model.{unknown[0]}; start from model=custom "
            f"(python train.py model=custom model._target_={target}) or drop it with ~model.{unknown[0]}"
        )
    from_data = {
        "input_shape": None if input_shape is None else list(input_shape),
        "num_classes": num_classes,
        "vocab_size": vocab_size,
        "block_size": block_size,
    }
    for key in DATA_ARGUMENTS:
        if options.get(key) is None and key in parameters.names and from_data[key] is not None:
            options[key] = from_data[key]
        elif options.get(key) is None and key not in parameters.names:
            options.pop(key, None)  # a data fact this model does not take
    try:
        model = instantiate(options)
    except InstantiationException as error:
        if isinstance(error.__cause__, TrainscopeError):  # our own one-line message, not Hydra's wrapper
            raise error.__cause__ from None
        raise
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model._target_={target} returned a {type(model).__name__}, not a torch.nn.Module")
    return model
