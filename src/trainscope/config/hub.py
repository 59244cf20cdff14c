"""A Hugging Face model or tokenizer named in the config: a local folder, or a name on the Hugging Face Hub.

`model.name` of `model=hf` and `data.tokenizer` take either, as `from_pretrained` does: `gpt2` or
`openai-community/gpt2` (downloaded once into the Hub cache, so it needs the network the first time) or a
folder that `save_pretrained` wrote (`/models/my-gpt`, `./tokenizer`, `~/gpt2`: works offline). A value
written as a path (absolute, or starting with `.` or `~`) is always a folder, so a mistyped folder is named
as a missing folder instead of being looked up on the Hub.

Nothing here runs code from what it loads: callers pass `trust_remote_code=False`, so a config or folder
that asks for custom modelling code (`auto_map`) is refused by transformers itself.
"""

from __future__ import annotations

from pathlib import Path

from trainscope.core.errors import ConfigError, first_line


def hub_source(key: str, value: object) -> str:
    """`value` as `from_pretrained` takes it: an existing folder (absolute), or a Hub name.

    Raises ConfigError for a value that is not a non-empty string, and for a path-like value that is not a folder.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a Hugging Face Hub name (gpt2) or a local folder, got {value!r}")
    folder = Path(value).expanduser()
    if folder.is_dir():
        return str(folder.resolve())
    looks_like_path = folder.is_absolute() or value.startswith((".", "~")) or folder.exists()
    if looks_like_path:
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ConfigError(
            f"{key}={value} {what}; pass a folder written by save_pretrained (config.json, tokenizer.json, ...) "
            "or a Hugging Face Hub name"
        )
    return value


def hub_load_error(key: str, source: str, what: str, error: BaseException) -> ConfigError:
    """The one line for a `from_pretrained` that failed: no network for a Hub name, or a folder without the files."""
    if Path(source).is_dir():
        return ConfigError(f"{key}={source} holds no loadable {what} ({first_line(error)})")
    return ConfigError(
        f"could not load {what} {key}={source} ({first_line(error)}); a Hub name needs the network the first time "
        "(or the Hub cache): save it with save_pretrained and pass that folder to work offline"
    )
