"""Search space: the official Hydra Optuna plugin's `params:` syntax turned into Optuna distributions.

Users switching from `hydra/sweeper=optuna` keep their `params:` blocks unchanged, so the parsing follows
that plugin's rules exactly, including its surprises (documented in the README):

- `range(a, b[, step])` samples from a to b *inclusive* (Hydra's own basic sweeper stops before b);
- `interval(a, b)` always samples floats (Hydra parses its ends as floats); use `range` for integers;
- `shuffle(range(...))` and every `choice`/comma list are categorical.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from trainscope.core.errors import ConfigError, first_line


@dataclass
class SearchSpace:
    """What the sweeper samples and what every trial gets unchanged.

    `distributions` maps a parameter name (the config key, e.g. `optimizer.lr`) to its Optuna
    distribution; `key_prefixes` keeps a `+`/`++` written in front of a sampled key so the job override
    can add it; `fixed_overrides` are passed verbatim to every trial (e.g. `hparams_search=mnist_cnn`).
    """

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    key_prefixes: dict[str, str] = field(default_factory=dict)
    fixed_overrides: dict[str, str] = field(default_factory=dict)

    def trial_overrides(self, params: Mapping[str, Any]) -> list[str]:
        """Hydra overrides that run one trial with the sampled `params`."""
        sampled = [
            f"{self.key_prefixes.get(name, '')}{name}={format_override_value(value)}" for name, value in params.items()
        ]
        return list(self.fixed_overrides.values()) + sampled


def format_override_value(value: Any) -> str:
    """Write a sampled value in override syntax (categorical choices are stored already encoded)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def distribution_from_override(override: Override) -> BaseDistribution | None:
    """The Optuna distribution of one sweep override, or None for a plain (fixed) value."""
    if not override.is_sweep_override():
        return None
    value = override.value()
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        for choice in choices:
            if not isinstance(choice, str | int | float | bool | type(None)):
                raise ConfigError(
                    f"{override.input_line}: choices must be str, int, float, bool or null, got {type(choice).__name__}"
                )
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if any(isinstance(x, float) for x in (start, stop, step)):
            return FloatDistribution(float(start), float(stop), step=float(step))
        return IntDistribution(int(start), int(stop), step=int(step))
    if isinstance(value, IntervalSweep):
        start, end = value.start, value.end
        log = "log" in value.tags
        if isinstance(start, int) and isinstance(end, int):
            return IntDistribution(int(start), int(end), log=log)
        return FloatDistribution(float(start), float(end), log=log)
    raise ConfigError(f"{override.input_line}: this sweep form is not supported; use choice, range or interval")


def distribution_from_spec(name: str, spec: Mapping[str, Any]) -> BaseDistribution:
    """One entry of the official plugin's (deprecated) `search_space` dict form.

    `{type: int|float|categorical, low, high, step, log, choices}`, as `hydra-optuna-sweeper` reads it.
    """
    kind = str(spec.get("type", "")).rsplit(".", 1)[-1]  # a DistributionType enum name or plain text
    try:
        if kind == "categorical":
            return CategoricalDistribution(list(spec["choices"]))
        low, high, log, step = spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
        if kind == "int":
            return IntDistribution(int(low), int(high), log=log, step=1 if step is None else int(step))
        if kind == "float":
            return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"hydra.sweeper.search_space.{name} is invalid: {first_line(error)}") from error
    raise ConfigError(f"hydra.sweeper.search_space.{name}.type must be int, float or categorical, got {kind!r}")


def parse_search_space(
    params: Mapping[str, Any] | None,
    arguments: Iterable[str] = (),
    search_space: Mapping[str, Mapping[str, Any]] | None = None,
) -> SearchSpace:
    """Parse `hydra.sweeper.search_space`, then `hydra.sweeper.params`, then the command-line overrides.

    A later entry wins on the same key, so a plain value on the command line fixes a searched key.
    """
    lines = [f"{key}={value}" for key, value in (params or {}).items()]
    lines += list(arguments)
    parser = OverridesParser.create()
    space = SearchSpace()
    for name, spec in (search_space or {}).items():
        space.distributions[str(name)] = distribution_from_spec(str(name), spec)
    for line in lines:
        try:
            override = parser.parse_override(line)
            distribution = distribution_from_override(override)
        except (HydraException, ValueError) as error:
            raise ConfigError(f"search space entry '{line}' is invalid: {first_line(error)}") from error
        name = override.key_or_group if override.package is None else f"{override.key_or_group}@{override.package}"
        space.distributions.pop(name, None)
        space.key_prefixes.pop(name, None)
        space.fixed_overrides.pop(name, None)
        if distribution is None:
            space.fixed_overrides[name] = override.input_line
        else:
            space.distributions[name] = distribution
            prefix = override.get_key_element()[: -len(name)] if override.get_key_element() != name else ""
            if prefix:
                space.key_prefixes[name] = prefix
    return space


def grid_search_space(distributions: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every value of each parameter, for GridSampler; intervals have no grid and are rejected."""
    grid: dict[str, list[Any]] = {}
    for name, distribution in distributions.items():
        if isinstance(distribution, CategoricalDistribution):
            grid[name] = list(distribution.choices)
        elif isinstance(distribution, IntDistribution) and not distribution.log:
            grid[name] = list(range(distribution.low, distribution.high + 1, distribution.step))
        elif isinstance(distribution, FloatDistribution) and distribution.step is not None:
            count = int(math.floor((distribution.high - distribution.low) / distribution.step + 1e-9)) + 1
            grid[name] = [round(distribution.low + i * distribution.step, 12) for i in range(count)]
        else:
            raise ConfigError(
                f"hydra/sweeper/sampler=grid needs a finite set of values for '{name}', got {distribution}; "
                "write it as choice(...), a comma list or range(...)"
            )
    return grid


def grid_size(grid: Mapping[str, list[Any]]) -> int:
    return math.prod(len(values) for values in grid.values())


def search_space_domains(distributions: Mapping[str, BaseDistribution]) -> dict[str, dict[str, Any]]:
    """A plain description of each parameter's domain (for the HParams experiment declaration and the results)."""
    domains: dict[str, dict[str, Any]] = {}
    for name, distribution in distributions.items():
        if isinstance(distribution, CategoricalDistribution):
            domains[name] = {"type": "categorical", "values": list(distribution.choices)}
        elif isinstance(distribution, IntDistribution | FloatDistribution):
            domains[name] = {
                "type": "int" if isinstance(distribution, IntDistribution) else "float",
                "low": distribution.low,
                "high": distribution.high,
                "step": distribution.step,
                "log": distribution.log,
            }
    return domains


def differing_parameter(recorded: Mapping[str, Any], domains: Mapping[str, Any]) -> str | None:
    """The first parameter whose domain differs between a study's recorded search space and this sweep's.

    Both are `search_space_domains` descriptions; `recorded` came back from the storage as JSON, so this
    sweep's is compared in the same form. None when they agree.
    """
    ours = json.loads(json.dumps(dict(domains)))
    for name in sorted(set(recorded) | set(ours)):
        if recorded.get(name) != ours.get(name):
            return name
    return None


def describe_domain(domain: Mapping[str, Any] | None) -> str:
    """`float in [0.0001, 0.1], log`, `categorical [32, 64]`, or `absent`: a domain in one phrase."""
    if domain is None:
        return "absent"
    if domain.get("type") == "categorical":
        return f"categorical {domain['values']}"
    text = f"{domain['type']} in [{domain['low']}, {domain['high']}]"
    if domain.get("step") is not None:
        text += f", step {domain['step']}"
    return text + (", log" if domain.get("log") else "")
