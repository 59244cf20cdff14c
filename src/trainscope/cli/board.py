"""`trainscope-board [DIR] [--port P]`: a TensorBoard over a run's, a sweep's or all runs' folder, in the
foreground until Ctrl-C (`trainscope.tensorboard.serve`); a server already serving DIR is reused, not doubled."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from trainscope.cli.process_exit import exit_after
from trainscope.core.errors import ConfigError, TrainscopeError, report_user_error

OUTPUT_DIR_VARIABLE = "TRAINSCOPE_OUTPUT_DIR"  # where `paths.output_root` puts runs, as conf/paths/default.yaml


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # one `error:` line and exit 2, no usage text
        report_user_error(ConfigError(f"{message}; usage: {self.format_usage().strip().removeprefix('usage: ')}"))


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="trainscope-board",
        description="A TensorBoard over a run's, a sweep's or all runs' folder, in the foreground until Ctrl-C; "
        "a server already serving the folder is reused (its URL printed), not doubled.",
    )
    parser.add_argument(
        "dir",
        nargs="?",
        default=os.environ.get(OUTPUT_DIR_VARIABLE, "outputs"),
        help=f"the folder to serve (default: ${OUTPUT_DIR_VARIABLE} or outputs, where runs go)",
    )
    parser.add_argument("--port", type=int, default=0, help="the port (default 0: any free port)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    folder = Path(arguments.dir)
    try:
        if not folder.is_dir():
            raise ConfigError(f"no folder {str(folder)!r} to serve; pass a run's or a sweep's folder, or outputs")
        if not 0 <= arguments.port <= 65535:
            raise ConfigError(f"--port must be from 1 to 65535, or 0 for any free port; got {arguments.port}")
        from trainscope.tensorboard.serve import serve

        board = serve(folder, arguments.port)
    except TrainscopeError as error:
        report_user_error(error)
    if not board.started:
        print(f"tensorboard: {board.url}  (already running, pid {board.pid}, serving {board.logdir})", flush=True)
        return
    try:  # from the line that says Ctrl-C stops it: a Ctrl-C right after it stops the server too
        with contextlib.suppress(KeyboardInterrupt):
            print(f"tensorboard: {board.url}  (serving {board.logdir}; Ctrl-C stops it)", flush=True)
            while board.running():
                time.sleep(1)
    finally:
        board.stop()


def entrypoint() -> None:
    exit_after(main)
