"""Where configs come from: the built-in tree shipped inside the package, and the user's own folder of options.

`trainscope/conf` is a link to the repository's top-level `conf/` (the source of truth): an editable install
reads the live tree through it, and a wheel holds a copy. The user's folder (`--config-dir`, or `./conf` in the
working directory) is searched after the built-in tree, so it adds options; a built-in option of the same
name wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainscope.core.errors import ConfigError

BUILT_IN_CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
CONFIG_DIR_VARIABLE = "TRAINSCOPE_CONFIG_DIR"
OUTPUT_DIR_VARIABLE = "TRAINSCOPE_OUTPUT_DIR"  # paths.output_root's default (conf/paths/default.yaml), else outputs/
DEFAULT_OUTPUT_ROOT = "outputs"
USER_CONFIG_DIR_NAME = "conf"
CONFIG_DIR_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp")


def config_dir() -> Path:
    """The config tree runs are composed from (the folder holding `train.yaml` and one folder per group): the
    built-in one, or a whole replacement named by `$TRAINSCOPE_CONFIG_DIR` (a copy to edit or to break)."""
    replacement = os.environ.get(CONFIG_DIR_VARIABLE)
    if replacement:
        if not (Path(replacement) / "train.yaml").is_file():
            raise ConfigError(
                f"{CONFIG_DIR_VARIABLE}={replacement} holds no train.yaml; unset it to use the built-in tree"
            )
        return Path(replacement).resolve()
    if not (BUILT_IN_CONFIG_DIR / "train.yaml").is_file():
        raise ConfigError(
            f"no config tree found at {BUILT_IN_CONFIG_DIR}: reinstall trainscope "
            "(in a checkout, src/trainscope/conf must be the link to ../../conf)"
        )
    return BUILT_IN_CONFIG_DIR.resolve()


def default_output_root() -> Path:
    """Where runs go when `paths.output_root` is not overridden: `$TRAINSCOPE_OUTPUT_DIR`, else `./outputs`."""
    return Path(os.environ.get(OUTPUT_DIR_VARIABLE) or DEFAULT_OUTPUT_ROOT)


def with_user_config_dir(arguments: list[str]) -> list[str]:
    """`arguments` plus `--config-dir=<working dir>/conf` when that folder exists and the command line names no
    config folder itself, so a project's own options are found wherever trainscope is installed.

    In a trainscope checkout `./conf` is the built-in tree itself (or the tree a `$TRAINSCOPE_CONFIG_DIR` copy
    replaces), and is not added.
    """
    if any(argument.partition("=")[0] in CONFIG_DIR_FLAGS for argument in arguments):
        return arguments
    folder = Path.cwd() / USER_CONFIG_DIR_NAME
    if not folder.is_dir() or folder.resolve() in (config_dir(), BUILT_IN_CONFIG_DIR.resolve()):
        return arguments
    return [f"--config-dir={folder.resolve()}", *arguments]
