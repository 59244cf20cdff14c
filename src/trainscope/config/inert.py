"""Which interpolations a config read back from a run directory may hold: a run directory is untrusted input.

`config/targets.py` decides which `_target_`s such a config may build, but a value anywhere in it can also be an
interpolation whose resolver runs when the value is read: `${oc.create:{_target_: torch.load, ...}}` hands the
builder a config object with a `_target_` no check saw, `${oc.decode:...}` does the same from a string,
`${oc.env:AWS_SECRET_ACCESS_KEY}` copies a secret into the run, and an app's own resolver may do anything. So a
config from a run directory is *inert*: before anything of it is resolved, every string in it that holds `${` is
parsed with OmegaConf's own grammar (the parser that would resolve it) and accepted only if it uses nothing but
what trainscope's own configs write:

- references to the config's own keys (`${data.num_classes}`, `${.x}`): they read the same file;
- `${oc.env:TRAINSCOPE_...}` (`paths.data_dir`, `paths.output_root`): trainscope's own variables, not the
  environment at large;
- `${hydra:...}` (the job's Hydra config, read only) and `${now:...}` (the clock);
- `${dir_name:...}` (trainscope's own name-cleaning function, which writes nothing).

Everything else is refused in one line: every other resolver OmegaConf, Hydra or an app registers
(`oc.create`, `oc.decode`, `oc.select`, `oc.dict.*`, `oc.deprecated`, `python_version`, trainscope's
`unique_dir`, which creates directories), an `oc.env` of any other variable, a `[...]`/`{...}` argument (what
`oc.create` builds configs from) and a value OmegaConf cannot parse. A value written `\\${...}` is text, not an
interpolation, and passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from trainscope.adapters.omegaconf_private import resolver_calls
from trainscope.core.errors import ConfigError

INERT_RESOLVERS: frozenset[str] = frozenset({"oc.env", "hydra", "now", "dir_name"})
"""The resolvers a run directory's config may call: they read the config, Hydra's config or the clock only."""

TRAINSCOPE_VARIABLE = re.compile(r"^TRAINSCOPE_[A-Z0-9_]+$")
"""The environment variables `${oc.env:...}` may read in a run directory's config."""

ALLOWED_TEXT = "references to its own keys, ${oc.env:TRAINSCOPE_...}, ${hydra:...}, ${now:...} and ${dir_name:...}"


def interpolation_refusal(value: str) -> str | None:
    """Why the string `value` may not be read from a run directory's config, or None if it is inert."""
    if "${" not in value:
        return None
    try:
        calls = resolver_calls(value)
    except ValueError as error:
        return f"is not an interpolation OmegaConf can parse ({error})"
    for call in calls:
        if call.name not in INERT_RESOLVERS:
            return f"calls the resolver {call.name}"
        if call.container_argument:
            return f"passes a [...] or {{...}} argument to {call.name}"
        if call.name == "oc.env" and not TRAINSCOPE_VARIABLE.match(call.first_argument or ""):
            return f"reads the environment variable {call.first_argument}, which is not one of trainscope's"
    return None


def strings_in(config: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every `(key, string value)` in a plain config container, at any depth (lists included)."""
    if isinstance(config, dict):
        for key, value in config.items():
            yield from strings_in(value, f"{path}.{key}" if path else str(key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from strings_in(value, f"{path}[{index}]")
    elif isinstance(config, str):
        yield path, config


def check_inert(config: Any, run_dir: Path, command: str, source: str) -> None:
    """Raise a one-line ConfigError for the first value of a run directory's config that is not inert.

    `config`: the config (a DictConfig/ListConfig, read unresolved, or plain data); `source` names the file
    (or the override) it came from, and `command` the argument the run directory came with (`run`, `resume`).
    """
    container = OmegaConf.to_container(config, resolve=False) if isinstance(config, DictConfig | ListConfig) else config
    for key, value in strings_in(container):
        reason = interpolation_refusal(value)
        if reason is not None:
            where = value if key.startswith("[") else f"{key}={value}"  # an item of a list file: the item itself
            raise ConfigError(
                f"{command}={run_dir}: {where} in {source} {reason}; a run directory is untrusted input, so its "
                f"config may hold only {ALLOWED_TEXT}: if you trust this run, write the value itself there"
            )
