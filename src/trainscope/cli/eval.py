"""`python eval.py run=<run_dir>` / `trainscope-eval`: test a finished run with its own config and best checkpoint.

Nothing from the training command line is repeated: the run directory holds the config and the weights.
The metrics are printed and written into the run (metrics.json `test`/`final`, `test/*` TensorBoard scalars).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from trainscope.cli.errors import as_user_error, exit_on_user_error, hydra_errors_in_one_line
from trainscope.cli.process_exit import exit_after
from trainscope.config.overrides import expand_home, hydra_quote, unquote
from trainscope.config.paths import config_dir
from trainscope.config.resolvers import register_resolvers
from trainscope.core.errors import ConfigError, RunDirError, report_user_error
from trainscope.core.run_dir import check_run_dir


def task(cfg: DictConfig) -> None:
    """Hydra's task: Hydra is only here so the run's `${hydra:...}` interpolations resolve as in training."""
    try:
        from trainscope.session.evaluate_run import evaluate_run  # torch loads here, not at --help

        allowed = [str(module) for module in cfg.allow_targets]
        metrics = evaluate_run(Path(cfg.run), checkpoint=str(cfg.checkpoint), device=cfg.device, allow_targets=allowed)
    except Exception as error:
        user_error = as_user_error(error)
        if user_error is None:
            raise
        report_user_error(user_error)
    for tag, value in metrics.items():
        print(f"{tag} {value:.6f}", flush=True)


PATH_ARGUMENTS = ("run", "checkpoint")
"""eval.py's arguments that name a file or directory: taken literally, whatever the path holds."""


def check_writable(run_dir: Path) -> None:
    """eval.py writes into the run (metrics.json, a TensorBoard event file, eval.log, which Hydra opens before
    the task starts): a run it cannot write is one line now, not a logging traceback."""
    if os.access(run_dir, os.W_OK):
        return
    read_only = bool(os.statvfs(run_dir).f_flag & os.ST_RDONLY)
    raise RunDirError(
        f"run={run_dir} cannot be written ({'read-only file system' if read_only else 'permission denied'}); "
        "eval.py writes the test metrics into the run: copy it to a writable folder and evaluate the copy"
    )


def quote_path_arguments(
    argv: list[str],
    usage: str = "to evaluate: python eval.py run=outputs/runs/<date>/<time>_<overrides>",
    writes_into_run: bool = True,
) -> list[str]:
    """`argv` with the `run=` and `checkpoint=` values quoted for Hydra; `run=` checked first (one line, exit 2).

    Run directory names hold `=` and `,` (they list the run's overrides), which Hydra's override grammar
    would read as a sweep; quoted, a path passes through as it is (`checkpoint=<run_dir>/checkpoints/last.pt`
    too; `checkpoint=best` stays the word `best`). `usage` ends the line that asks for a missing `run=`;
    `writes_into_run`: the command writes into the run (eval.py), so it must be writable.
    """
    if not any(arg.startswith("run=") for arg in argv):
        raise ConfigError(f"pass the run {usage}")
    quoted = []
    for arg in expand_home(argv):  # run=~/runs/x, data.root=~/pets
        key, _, value = arg.partition("=")
        if key in PATH_ARGUMENTS and value:
            value = unquote(value)
            if key == "run":
                check_run_dir(Path(value))
                if writes_into_run:
                    check_writable(Path(value))
            arg = f"{key}={hydra_quote(value)}"
        quoted.append(arg)
    return quoted


def main() -> None:
    register_resolvers()
    with exit_on_user_error():
        conf = config_dir()
        if not any(arg.startswith(("--help", "-h", "--cfg", "--info", "--hydra-help")) for arg in sys.argv[1:]):
            sys.argv[1:] = quote_path_arguments(sys.argv[1:])
    with hydra_errors_in_one_line():
        hydra.main(version_base="1.3", config_path=str(conf), config_name="eval")(task)()


def entrypoint() -> None:
    """`python eval.py` and `trainscope-eval`: `main()` in a process of its own, which then exits without the
    interpreter's slow teardown (`trainscope.cli.process_exit`)."""
    exit_after(main)


if __name__ == "__main__":
    entrypoint()
