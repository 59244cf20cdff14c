"""`model.init_from`: start a new run from pretrained weights instead of a random initialisation.

The source is, in the order it is recognised:

- a trainscope run directory: its `checkpoints/best.pt` (else `last.pt`);
- a checkpoint file: a trainscope checkpoint (its `model` state), a plain state dict (`torch.save(model.state_dict())`)
  or a `.safetensors` file;
- `timm:<name>` or `torchvision:<weights>` (`timm:resnet10t.a1_in1k`, `torchvision:ResNet18_Weights.IMAGENET1K_V1`):
  that library's pretrained weights (downloaded once, then from its cache);
- anything else is a Hugging Face name or `save_pretrained` folder, loaded with transformers.

A source is untrusted input, as a run directory given to `resume=` is: files load with `weights_only=True` (or as
safetensors), Hugging Face models without remote code, and nothing of the source run's config is built (it is
only read, to name its model in an error).

Keys that match load. The head (`trainscope.models.parts`) may differ in shape, e.g. another `num_classes`: it
starts from zero (uniform first predictions) and one log line names it. Anything else that does not match is one
ConfigError listing the first mismatches: the source is another architecture.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from trainscope.core.checkpoint_io import find_checkpoint, load_checkpoint
from trainscope.core.errors import CheckpointError, ConfigError, first_line
from trainscope.core.run_dir import SAVED_CONFIG
from trainscope.models.parts import head_name, in_module

log = logging.getLogger(__name__)

KEY = "model.init_from"
SHOWN_MISMATCHES = 3
WRAPPER_PREFIXES = ("model.", "module.", "_orig_mod.")
"""Prefixes one side's keys may have and the other's not: `HuggingFaceCausalLM`'s `model.`, DDP's `module.`,
torch.compile's `_orig_mod.`."""


def load_initial_weights(model: nn.Module, source: str) -> None:
    """Load `source`'s weights into `model` where they fit; a head of another shape stays as initialised."""
    state, described = source_state(source)
    own = model.state_dict()
    state = _aligned(state, own)
    head = head_name(model)
    mismatched = [key for key in own if key in state and tuple(state[key].shape) != tuple(own[key].shape)]
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    kept_fresh = [key for key in mismatched + missing if in_module(key, head) and head]
    bad = [
        *(f"{key} {list(state[key].shape)} vs {list(own[key].shape)}" for key in mismatched if key not in kept_fresh),
        *(f"{key} missing" for key in missing if key not in kept_fresh),
        *(f"{key} unexpected" for key in unexpected if not (head and in_module(key, head))),
    ]
    if bad:
        raise ConfigError(
            f"{KEY}={source} does not fit this model ({type(model).__name__}{_source_model(source)}): "
            f"{len(bad)} mismatches, first {', '.join(bad[:SHOWN_MISMATCHES])}; start from weights of the same "
            "architecture (the same model and sizes as the source run)"
        )
    loaded = {key: value for key, value in state.items() if key in own and key not in kept_fresh}
    log.info("%s: loaded %d of %d tensors from %s", KEY, len(loaded), len(own), described)
    # The new head starts at zero: its first predictions are uniform, not confidently wrong on pretrained features
    # (larger than a fresh backbone's), which a few steps could not undo.
    loaded |= {key: torch.zeros_like(own[key]) for key in kept_fresh if own[key].is_floating_point()}
    model.load_state_dict(loaded, strict=False)
    if kept_fresh:
        log.info(
            "%s: head %s re-initialised to zero (%s: another shape than in %s)",
            KEY,
            head,
            ", ".join(kept_fresh),
            described,
        )


def source_state(source: str) -> tuple[dict[str, Tensor], str]:
    """The state dict `source` names, and how to name it in a log line."""
    path = Path(source)
    if path.is_dir() and (path / SAVED_CONFIG).is_file():
        try:
            checkpoint_path = find_checkpoint(path, "best")
        except CheckpointError:
            raise ConfigError(
                f"{KEY}={source} has no checkpoint (checkpoints/best.pt or last.pt): it stopped before its first "
                "checkpoint; pick a run that trained at least one epoch"
            ) from None
        return _checkpoint_state(checkpoint_path), str(checkpoint_path)
    if path.is_file():
        return _file_state(path), str(path)
    library, _, name = source.partition(":")
    if library == "timm" and name:
        return _timm_state(name), source
    if library == "torchvision" and name:
        return _torchvision_state(name), source
    if path.is_dir() and not (path / "config.json").is_file():
        raise ConfigError(
            f"{KEY}={source} is neither a run directory (no {SAVED_CONFIG}) nor a Hugging Face folder (no "
            "config.json); pass the directory `python train.py` printed, or a checkpoint file"
        )
    if not path.exists() and source.startswith((".", "/", "~")):
        raise ConfigError(f"{KEY}={source}: no such file or directory; pass a run directory or a checkpoint file")
    return _hugging_face_state(source), source


def _checkpoint_state(path: Path) -> dict[str, Tensor]:
    try:
        return load_checkpoint(path)["model"]
    except CheckpointError as error:
        raise ConfigError(f"{KEY}: {error}") from None


def _file_state(path: Path) -> dict[str, Tensor]:
    """A trainscope checkpoint, a plain state dict or a safetensors file; all loaded without running code."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as error:  # safetensors raises its own error types for a damaged header
            raise ConfigError(f"{KEY}={path} is not a readable safetensors file ({first_line(error)})") from None
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or unsafe file: all mean the same here
        raise ConfigError(
            f"{KEY}={path} is corrupt or not a weights-only checkpoint ({type(error).__name__}); "
            "pass a trainscope checkpoint, a saved state_dict or a .safetensors file"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        loaded = loaded["model"]
    if not isinstance(loaded, dict) or not all(isinstance(value, Tensor) for value in loaded.values()):
        raise ConfigError(f"{KEY}={path} holds no state dict (a dict of tensors) nor a trainscope checkpoint")
    return loaded


def _timm_state(name: str) -> dict[str, Tensor]:
    try:
        import timm
    except ImportError:
        raise ConfigError(f"{KEY}=timm:{name} needs the timm package: pip install 'trainscope[timm]'") from None
    try:
        return timm.create_model(name, pretrained=True).state_dict()
    except (OSError, RuntimeError) as error:
        raise ConfigError(
            f"{KEY}=timm:{name}: could not load its pretrained weights ({first_line(error)}); check the name "
            "(python -c 'import timm; print(timm.list_pretrained())') and the network, or pass a local checkpoint"
        ) from None


def _torchvision_state(name: str) -> dict[str, Tensor]:
    from torchvision.models import get_weight

    try:
        weights = get_weight(name)
    except (ValueError, KeyError, AttributeError):
        raise ConfigError(
            f"{KEY}=torchvision:{name} is not a torchvision weights name; use e.g. "
            "torchvision:ResNet18_Weights.IMAGENET1K_V1"
        ) from None
    try:
        return weights.get_state_dict(progress=False)
    except (OSError, RuntimeError) as error:
        raise ConfigError(
            f"{KEY}=torchvision:{name}: could not load the weights ({first_line(error)}); check the network"
        ) from None


def _hugging_face_state(source: str) -> dict[str, Tensor]:
    try:
        import transformers
    except ImportError:
        raise ConfigError(
            f"{KEY}={source} is neither a file nor a run directory, and a Hugging Face model needs the transformers "
            "package: pip install 'trainscope[lm]'"
        ) from None
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(source, trust_remote_code=False, weights_only=True)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{KEY}={source} is no run directory, checkpoint file or loadable Hugging Face model "
            f"({first_line(error)}); pass a run directory, a checkpoint, a save_pretrained folder or a Hub name"
        ) from None
    return model.state_dict()


def _aligned(state: dict[str, Tensor], own: dict[str, Any]) -> dict[str, Tensor]:
    """`state` with the wrapper prefix added or removed that makes the most of its keys match `own`'s."""
    candidates = [state]
    for prefix in WRAPPER_PREFIXES:
        candidates.append({prefix + key: value for key, value in state.items()})
        if all(key.startswith(prefix) for key in state):
            candidates.append({key.removeprefix(prefix): value for key, value in state.items()})
    return max(candidates, key=lambda candidate: sum(key in own for key in candidate))


def _source_model(source: str) -> str:
    """`, the source run built <model._target_>` when `source` is a run directory whose config says so."""
    config = Path(source) / SAVED_CONFIG
    if not config.is_file():
        return ""
    # read as plain data: a source run is untrusted, so no interpolation of its config is resolved
    from trainscope.config.yaml_files import load_plain_yaml, plain_select

    try:
        target = plain_select(load_plain_yaml(config), "model._target_")
    except Exception:  # an unreadable or odd config only loses this hint
        return ""
    if not isinstance(target, str):
        return ""
    return f", the source run built {target}"
