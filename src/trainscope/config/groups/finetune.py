"""The `finetune` group, typed: which parameters train, and when frozen ones start to (docs/fine-tuning.md).

The defaults are `conf/finetune/default.yaml`'s: nothing frozen, every parameter trains, as without the group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from trainscope.config.rules import BOOLEAN, FRACTION, NON_NEGATIVE_INT, POSITIVE_INT, POSITIVE_NUMBER, Rule
from trainscope.config.typed import TypedGroup, key
from trainscope.core.errors import ConfigError


def _patterns(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(item, str) and item for item in value)


FREEZE = Rule("null, backbone (all but the head), a parameter-name pattern or a list of them", _patterns)


def _names(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(item, str) and item for item in value)


@dataclass(frozen=True, kw_only=True)
class LoraConfig(TypedGroup):
    """`finetune.lora`: low-rank adapters (PEFT's LoRA) on the named `nn.Linear`/`Conv2d` layers; the rest freezes."""

    GROUP: ClassVar[str] = "finetune.lora"

    target_modules: tuple[str, ...] = key(Rule("a list of module names (or their last parts: qkv, c_attn)", _names))
    r: int = key(POSITIVE_INT, 8)
    alpha: float = key(POSITIVE_NUMBER, 16)
    dropout: float = key(FRACTION, 0.0)


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(TypedGroup):
    """The `finetune` keys."""

    GROUP: ClassVar[str] = "finetune"

    freeze: tuple[str, ...] | None = key(FREEZE.or_null(), None)
    """Parameters that do not train: `backbone`, or patterns of their names (`features.*`, `layer1`: a module's name
    covers everything inside it)."""
    unfreeze_at_epoch: int | None = key(NON_NEGATIVE_INT.or_null(), None)
    """Frozen for this many epochs, then trained: `2` trains them from the third epoch on."""
    unfreeze_at_step: int | None = key(NON_NEGATIVE_INT.or_null(), None)
    """Frozen for this many optimizer steps, then trained."""
    unfreeze_every: int | None = key(POSITIVE_INT.or_null(), None)
    """Gradual unfreezing: from the unfreeze point on, one more layer group (from the output side) every this many
    epochs (or steps, with `unfreeze_at_step`), instead of all at once."""
    freeze_bn: bool = key(BOOLEAN, False)
    """Frozen BatchNorm layers keep their running statistics (they run in eval mode while frozen)."""
    lora: LoraConfig | None = key(
        Rule("null or a mapping of target_modules, r, alpha, dropout", lambda value: isinstance(value, dict)).or_null(),
        None,
    )
    """LoRA adapters (`trainscope.models.lora`, needs `pip install 'trainscope[finetune]'`); null: none."""

    def __post_init__(self) -> None:
        if isinstance(self.freeze, str):
            object.__setattr__(self, "freeze", (self.freeze,))
        super().__post_init__()

    def check_together(self) -> None:
        if self.unfreeze_at_epoch is not None and self.unfreeze_at_step is not None:
            raise ConfigError("finetune.unfreeze_at_epoch and finetune.unfreeze_at_step are both set; set one of them")
        unfreezes = self.unfreeze_at_epoch is not None or self.unfreeze_at_step is not None
        if (unfreezes or self.unfreeze_every is not None or self.freeze_bn) and self.freeze is None:
            raise ConfigError(
                "finetune.unfreeze_at_epoch, unfreeze_at_step, unfreeze_every and freeze_bn need frozen parameters; "
                "set finetune.freeze (backbone, or parameter-name patterns)"
            )
        if self.unfreeze_every is not None and not unfreezes:
            raise ConfigError(
                "finetune.unfreeze_every needs the point it starts at: set finetune.unfreeze_at_epoch or "
                "finetune.unfreeze_at_step"
            )

    @property
    def unfreezes(self) -> bool:
        return self.unfreeze_at_epoch is not None or self.unfreeze_at_step is not None
