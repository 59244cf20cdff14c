"""The parts of a model fine-tuning names: its head, its layers in order, the parameters a pattern selects.

One rule for every model, so `model.init_from` (a head of another shape is re-initialised), `finetune.freeze=backbone`
(all but the head) and gradual unfreezing (layer groups from the output side) agree on what the head is:

- a model may name it: a `head_name` attribute (the dotted name of a submodule), for your own module;
- timm models name it with `get_classifier()`;
- otherwise the head is the last module in registration order that holds parameters of its own: `fc` of a
  torchvision ResNet, the last `Linear` of the built-in CNN and MLP, `lm_head` of `model=gpt` and of a Hugging Face
  causal LM (whose weight is usually the token embedding's, tied: freezing the backbone then leaves the embedding
  trainable too, since it is one tensor).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn

from trainscope.core.errors import ConfigError


def head_name(model: nn.Module) -> str:
    """The dotted name of `model`'s head module ("" when the model is a single layer)."""
    named = getattr(model, "head_name", None)
    if isinstance(named, str):
        return named
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):  # timm
        classifier = get_classifier()
        for name, module in model.named_modules():
            if module is classifier and name:
                return name
    holders = [name for name, module in model.named_modules() if _holds_own_parameters(module)]
    return holders[-1] if holders else ""


def _holds_own_parameters(module: nn.Module) -> bool:
    # `_parameters`, not `parameters(recurse=False)`: the latter drops a tied weight already seen elsewhere.
    return any(parameter is not None for parameter in module._parameters.values())


def in_module(parameter_name: str, module_name: str) -> bool:
    """Whether the parameter `parameter_name` belongs to the module `module_name` (or one inside it)."""
    return not module_name or parameter_name == module_name or parameter_name.startswith(module_name + ".")


def layer_groups(model: nn.Module) -> list[list[str]]:
    """`model`'s parameter names in groups of consecutive layers, from the input side to the output side.

    Modules without parameters of their own (wrappers, `HuggingFaceCausalLM.model.transformer`) are looked into; a
    `ModuleList`/`Sequential` gives one group per entry (a transformer block, a ResNet block); any other module is
    one group. A parameter shared by two modules (a tied head) counts in the first. What gradual unfreezing and
    layer-wise learning-rate decay count in.
    """
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    groups: list[list[str]] = []
    seen: set[int] = set()

    def add_group(module: nn.Module) -> None:
        group = [p for p in module.parameters() if id(p) in names and id(p) not in seen]
        seen.update(id(p) for p in group)
        if group:
            groups.append([names[id(p)] for p in group])

    def visit(module: nn.Module) -> None:
        if isinstance(module, nn.ModuleList | nn.Sequential):
            for child in module.children():
                add_group(child)
        elif not _holds_own_parameters(module) and any(True for _ in module.children()):
            for child in module.children():
                visit(child)
        else:
            add_group(module)

    visit(model)
    return groups


BACKBONE = "backbone"
"""The pattern meaning every parameter but the head's."""


def matches(parameter_name: str, pattern: str) -> bool:
    """`pattern` names the parameter: an fnmatch pattern of its name, or the name of a module it is in."""
    return in_module(parameter_name, pattern) or fnmatch.fnmatchcase(parameter_name, pattern)


def select_parameters(model: nn.Module, patterns: Sequence[str], key: str) -> list[str]:
    """The names of `model`'s parameters that `patterns` name (`backbone`: all but the head's), in model order.

    A pattern that names no parameter is a typo, not a no-op: one ConfigError naming it and a few real names.
    """
    named = list(model.named_parameters())
    names = [name for name, _ in named]
    head_module = model.get_submodule(head_name(model))
    head_ids = {id(parameter) for parameter in head_module.parameters()}  # a tied weight under either name
    head = {name for name, parameter in named if id(parameter) in head_ids}
    selected: set[str] = set()
    for pattern in patterns:
        if pattern == BACKBONE:
            chosen = {name for name in names if name not in head}
        else:
            chosen = {name for name in names if matches(name, pattern)}
        if not chosen:
            modules = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in names))
            raise ConfigError(
                f"{key}: {pattern!r} matches no parameter of {type(model).__name__}; use {BACKBONE}, a module name "
                f"or an fnmatch pattern of parameter names, e.g. {', '.join(modules[:4])}"
            )
        selected |= chosen
    return [name for name in names if name in selected]
