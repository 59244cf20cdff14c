"""`trainscope-export run=<run_dir> [merged=true] [checkpoint=best|last|<file>] [out=<file>]`: a run's weights as a
plain state dict (`trainscope.session.export_run`); prints the file it wrote."""

from __future__ import annotations

import sys
from pathlib import Path

from trainscope.cli.process_exit import exit_after
from trainscope.core.errors import ConfigError, report_user_error

USAGE = "trainscope-export run=<run_dir> [merged=true] [checkpoint=best|last|<file>] [out=<file>]"
KEYS = ("run", "merged", "checkpoint", "out")


def parse_arguments(argv: list[str]) -> dict[str, str]:
    """`key=value` arguments; an unknown key, a missing `run=` or a `merged=` that is no boolean is one line."""
    values: dict[str, str] = {}
    for argument in argv:
        key, equals, value = argument.partition("=")
        if not equals or key not in KEYS:
            raise ConfigError(f"unknown argument {argument!r}; usage: {USAGE}")
        values[key] = value
    if not values.get("run"):
        raise ConfigError(f"pass the run to export: {USAGE}")
    if values.get("merged", "false").lower() not in ("true", "false"):
        raise ConfigError(f"merged must be true or false, got {values['merged']!r}")
    return values


def main(argv: list[str] | None = None) -> None:
    try:
        values = parse_arguments(sys.argv[1:] if argv is None else argv)
        from trainscope.session.export_run import export_run  # torch loads here, not for a usage error

        written = export_run(
            Path(values["run"]),
            merged=values.get("merged", "false").lower() == "true",
            checkpoint=values.get("checkpoint", "best"),
            out=Path(values["out"]) if values.get("out") else None,
        )
    except Exception as error:
        from trainscope.cli.errors import as_user_error

        user_error = as_user_error(error)
        if user_error is None:
            raise
        report_user_error(user_error)
    print(written, flush=True)


def entrypoint() -> None:
    exit_after(main)
