"""Typed config groups: a frozen dataclass per config group, whose fields are the group's keys.

A key is written once, as a field of its group's dataclass: its Python type (the annotation), its default (none:
the YAML must set it) and its rule (what it accepts, `trainscope.config.rules`), e.g.

    batch_size: int = key(POSITIVE_INT)
    num_images: int = key(int_at_least(1), 16)

Everything else is derived from that field: the instance checks every key against its rule and converts it to
its annotated type when it is built (`__post_init__`, so `dataclasses.replace` checks again), `from_config`
refuses a key the dataclass does not have (`data.batchsize is not a key of data=mnist_sample; did you mean
data.batch_size?`) instead of swallowing it, `check_group` runs the same checks on the composed config before
any work starts, and `rules` lists the rule table `trainscope.config.schema` looks keys up in.

Plain dataclasses, not Hydra ConfigStore schemas: OmegaConf would check types at composition with its own
multi-line messages and refuse the `null`s a rule allows; the YAML options stay as they are (their values are
the group's options, checked by the same rules), and configs read back from run directories, the user's own
config folder and direct calls (`build_data(...)` in a notebook) all meet the same checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from trainscope.config.arguments import target_parameters
from trainscope.config.overrides import interpolation_reason
from trainscope.config.rules import Rule
from trainscope.core.errors import ConfigError

RULE = "trainscope.rule"
RUNTIME_KEY = "trainscope.runtime_key"

Group = TypeVar("Group", bound="TypedGroup")


def key(rule: Rule, default: Any = dataclasses.MISSING) -> Any:
    """A field that is a config key: its `rule`, and its `default` (none: every option of the group sets it)."""
    return dataclasses.field(default=default, metadata={RULE: rule})


def section(group: type[TypedGroup]) -> Any:
    """A key holding a nested group (`data.augment`): a mapping of that group's keys; null means its defaults."""
    rule = Rule(
        f"a mapping of {', '.join(group.key_names())}",
        lambda value: value is None or isinstance(value, (Mapping, group)),
    )
    return dataclasses.field(default_factory=group, metadata={RULE: rule})


def runtime(default: Any, rule: Rule, named: str) -> Any:
    """A field the code sets, never a key of the group (`seed` from `trainer.seed`, this process's `rank`);
    checked by `rule` under the name it has in the config (`named`)."""
    return dataclasses.field(default=default, metadata={RULE: rule, RUNTIME_KEY: named})


def is_hydra_key(name: str) -> bool:
    """`_target_`, `_partial_`, `_convert_`, ...: instructions to `hydra.utils.instantiate`, not keys of a group."""
    return name.startswith("_") and name.endswith("_")


def closest_key_hint(prefix: str, name: str, known: list[str]) -> str:
    """`did you mean data.batch_size?`, or the valid keys when none is close."""
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {prefix}.{close[0]}?" if close else f"its keys: {', '.join(sorted(known))}"


def unknown_key_error(prefix: str, name: str, known: list[str], owner: str) -> ConfigError:
    """`data.batchsize is not a key of data=mnist_sample; did you mean data.batch_size?`"""
    return ConfigError(f"{prefix}.{name} is not {owner}; {closest_key_hint(prefix, name, known)}")


class TypedGroup:
    """The base of every typed group: subclasses are frozen dataclasses whose `key` fields are the group's keys."""

    GROUP: ClassVar[str]
    """Where the group sits in the config (`trainer`, `data.augment`): the prefix of its keys in messages."""

    def __post_init__(self) -> None:
        """Every key passes its rule and takes its annotated type; then the checks that combine keys."""
        hints = _type_hints(type(self))
        for field in _checked_fields(type(self)):
            name = field.metadata.get(RUNTIME_KEY) or f"{self.GROUP}.{field.name}"
            if getattr(self, field.name) is TARGET_DEFAULT:
                continue
            value = field.metadata[RULE].checked(name, getattr(self, field.name))
            object.__setattr__(self, field.name, _converted(hints[field.name], value))
        self.check_together()

    def check_together(self) -> None:
        """The checks that combine keys (a mean per input channel); a subclass adds its own."""

    @classmethod
    def key_names(cls) -> list[str]:
        """The group's keys, in the order they are declared."""
        return [field.name for field in _checked_fields(cls) if RUNTIME_KEY not in field.metadata]

    @classmethod
    def owner(cls, values: Mapping[str, Any]) -> str:
        """What the group is, for a message about a key it does not have: `a trainer key`."""
        return f"a {cls.GROUP} key"

    @classmethod
    def known_values(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` without Hydra's instructions, and with each key the dataclass does not declare judged by
        `undeclared_key`."""
        own = cls.key_names()
        return {
            name: value
            for name, value in values.items()
            if not is_hydra_key(name) and (name in own or cls.undeclared_key(name, value, values))
        }

    @classmethod
    def undeclared_key(cls, name: str, value: Any, values: Mapping[str, Any]) -> bool:
        """Keep (True) or drop (False) a key the dataclass does not declare, or refuse it: by default, refuse."""
        raise unknown_key_error(cls.GROUP, name, cls.key_names(), cls.owner(values))

    @classmethod
    def required_keys(cls) -> list[str]:
        return [
            field.name
            for field in _checked_fields(cls)
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        ]

    @classmethod
    def rule(cls, name: str) -> Rule:
        return next(field.metadata[RULE] for field in _checked_fields(cls) if field.name == name)

    @classmethod
    def check_required(cls, values: Mapping[str, Any]) -> None:
        for name in cls.required_keys():
            if name not in values:
                raise ConfigError(f"{cls.GROUP}.{name} must be set to {cls.rule(name).accepts}")

    @classmethod
    def from_config(cls: type[Group], values: Mapping[str, Any] | DictConfig | None, **runtime: Any) -> Group:
        """The checked group of `values` (a composed config's node, or the keywords a builder received);
        `runtime` sets the fields that are not keys."""
        if isinstance(values, DictConfig):
            values = typing.cast(dict[str, Any], OmegaConf.to_container(values, resolve=True))
        known = cls.known_values(values or {})
        cls.check_required(known)
        return cls(**known, **runtime)


TARGET_DEFAULT: Any = type("TargetDefault", (), {"__repr__": lambda self: "<the target's default>"})()
"""The default of a key that is an argument of the group's `_target_`: not set, the target's own default applies."""


class TargetArguments(TypedGroup):
    """A group whose keys, besides its own, are the arguments of the object its `_target_` names (an optimizer, a
    learning-rate schedule): that object's signature is the rest of the schema.

    Its dataclass declares only the keys trainscope checks (`optimizer.lr`) or adds (`scheduler.interval`); it is
    a declaration, checked by `check_group`, while `hydra.utils.instantiate` builds the object itself.
    """

    @classmethod
    def undeclared_key(cls, name: str, value: Any, values: Mapping[str, Any]) -> bool:
        """An argument of the target is kept; a target that cannot be imported is left to its builder."""
        target = values.get("_target_")
        parameters = target_parameters(target)
        if parameters is None or parameters.accepts(name):
            return True
        valid = sorted({*cls.key_names(), *parameters.names})
        raise unknown_key_error(cls.GROUP, name, valid, f"an argument of {target}")


def check_group(group: type[TypedGroup], node: Any) -> None:
    """The entrypoint's check of one group of the composed config, before any work: no unknown key, none of the
    required ones missing, every value passes its rule (nested groups too).

    Outside Hydra's runtime (a test's `compose`) `${hydra:...}` does not resolve: those values are left to the
    builder, which checks them when it gets them.
    """
    if not isinstance(node, DictConfig):
        return
    values = dict(_resolvable_items(node, group.GROUP))
    known = group.known_values(values)
    group.check_required(known)
    for field in _checked_fields(group):
        value = known.get(field.name, _UNRESOLVED)
        if RUNTIME_KEY in field.metadata or value is _UNRESOLVED:
            continue
        field.metadata[RULE].checked(f"{group.GROUP}.{field.name}", value)
        if _is_section(field):
            check_group(field.default_factory, node[field.name])  # type: ignore[arg-type]


def rules(group: type[TypedGroup]) -> Iterator[tuple[str, Rule]]:
    """`(full key, rule)` of every key of `group`, nested groups' keys included (`data.augment.crop_padding`)."""
    for field in _checked_fields(group):
        if RUNTIME_KEY in field.metadata:
            continue
        if _is_section(field):
            yield from rules(field.default_factory)  # type: ignore[arg-type]
        else:
            yield f"{group.GROUP}.{field.name}", field.metadata[RULE]


_UNRESOLVED = object()


def _is_section(field: dataclasses.Field[Any]) -> bool:
    return isinstance(field.default_factory, type) and issubclass(field.default_factory, TypedGroup)


def _resolvable_items(node: DictConfig, prefix: str) -> Iterator[tuple[str, Any]]:
    """The node's values, resolved; outside Hydra's runtime, `_UNRESOLVED` for those that need it."""
    for name in node:
        try:
            value = node[name]
            yield str(name), OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        except InterpolationResolutionError as error:
            if HydraConfig.initialized():  # `${oc.env:UNSET}`: the user's mistake, named
                raise ConfigError(f"cannot resolve {prefix}.{name}: {interpolation_reason(error)}") from None
            yield str(name), _UNRESOLVED


@functools.cache
def _checked_fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(field for field in dataclasses.fields(cls) if RULE in field.metadata)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_CONVERTERS: dict[Any, Any] = {
    float: float,
    str: str,
    Path: lambda value: Path(str(value)).expanduser(),
}
"""The annotated types a checked value is converted to: `max_memory_gb: 4` is 4.0, `root` a Path."""


def _converted(hint: Any, value: Any) -> Any:
    """`value` as its field's annotation says, once its rule passed; unions other than `X | None` stay as they are."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        return _converted(kinds[0], value) if len(kinds) == 1 else value
    if origin is tuple:  # tuple[int, int, int] or tuple[float, ...]
        kinds = [kind for kind in typing.get_args(hint) if kind is not Ellipsis]
        return tuple(_converted(kinds[index % len(kinds)], item) for index, item in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, TypedGroup):
        return value if isinstance(value, hint) else hint.from_config(value)
    converter = _CONVERTERS.get(hint)
    return converter(value) if converter is not None else value
