"""`python eval.py run=<run_dir>` / `trainscope-eval`: test a finished run with its own config and best checkpoint.

Nothing from the training command line is repeated: the run directory holds the config and the weights.
The metrics are printed and written into the run (metrics.json `test`/`final`, `test/*` TensorBoard scalars).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from trainscope.cli.errors import as_user_error, exit_on_user_error
from trainscope.config.overrides import hydra_quote, unquote
from trainscope.config.paths import config_dir
from trainscope.config.resolvers import register_resolvers
from trainscope.core.errors import ConfigError, report_user_error
from trainscope.core.run_dir import check_run_dir


def task(cfg: DictConfig) -> None:
    """Hydra's task: Hydra is only here so the run's `${hydra:...}` interpolations resolve as in training."""
    try:
        from trainscope.session.evaluate_run import evaluate_run  # torch loads here, not at --help

        metrics = evaluate_run(Path(cfg.run), checkpoint=str(cfg.checkpoint), device=cfg.device)
    except Exception as error:
        user_error = as_user_error(error)
        if user_error is None:
            raise
        report_user_error(user_error)
    for tag, value in metrics.items():
        print(f"{tag} {value:.6f}", flush=True)


def quote_run_argument(argv: list[str]) -> list[str]:
    """`argv` with the `run=` value quoted for Hydra, checked first so a typo is one line and exit code 2.

    Run directory names hold `=` and `,` (they list the run's overrides), which Hydra's override grammar
    would read as a sweep; quoted, the path passes through as it is.
    """
    positions = [index for index, arg in enumerate(argv) if arg.startswith("run=")]
    if not positions:
        raise ConfigError("pass the run to evaluate: python eval.py run=outputs/runs/<date>/<time>_<overrides>")
    argv = list(argv)
    for index in positions:
        value = unquote(argv[index].split("=", 1)[1])
        check_run_dir(Path(value))
        argv[index] = f"run={hydra_quote(value)}"
    return argv


def main() -> None:
    register_resolvers()
    with exit_on_user_error():
        conf = config_dir()
        if not any(arg.startswith(("--help", "-h", "--cfg", "--info", "--hydra-help")) for arg in sys.argv[1:]):
            sys.argv[1:] = quote_run_argument(sys.argv[1:])
    hydra.main(version_base="1.3", config_path=str(conf), config_name="eval")(task)()


if __name__ == "__main__":
    main()
