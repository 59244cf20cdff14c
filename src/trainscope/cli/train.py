"""`python train.py` / `trainscope-train`: Hydra composes the config, `trainscope.session.run` trains.

torch is imported only inside the task, so `--help` and `--cfg job` answer instantly.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from trainscope.cli.errors import as_user_error, exit_on_user_error
from trainscope.config.overrides import check_group_choices
from trainscope.config.paths import config_dir
from trainscope.config.resolvers import register_resolvers
from trainscope.config.schema import validate_config
from trainscope.core.errors import report_user_error
from trainscope.core.interruption import RunInterrupted

log = logging.getLogger("trainscope")
# At import, not only in main(): a launcher's worker process (joblib, submitit) imports this module to
# unpickle `task`, then composes each job's config, whose run-directory names use these resolvers.
register_resolvers()


def task(cfg: DictConfig) -> float | tuple[float, ...]:
    """Hydra's task function: one run; returns `optimized_metric` for sweepers."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        validate_config(cfg)
        from trainscope.session.run import train  # torch loads here, not at --help

        return train(cfg, run_dir).objective
    except RunInterrupted as interrupted:  # checkpoint, metrics.json and TensorBoard are written
        if multirun:
            raise KeyboardInterrupt from interrupted  # the sweep stops too, as after a Ctrl-C
        sys.exit(interrupted.exit_code)
    except Exception as error:
        user_error = as_user_error(error)
        if user_error is None:
            raise  # a bug: keep the traceback
        log.error("%s", user_error)
        if multirun:
            raise user_error from error  # the sweeper records this job as failed and goes on
        report_user_error(user_error)


def main() -> None:
    register_resolvers()
    with exit_on_user_error():
        conf = config_dir()
        if any(argument.startswith("resume=") for argument in sys.argv[1:]):
            from trainscope.cli.resume_arguments import (
                resume_arguments,  # composes the saved config: only when resuming
            )

            sys.argv[1:] = resume_arguments(sys.argv[1:], conf)  # continue that run in its own directory
        check_group_choices(sys.argv[1:], conf)
    hydra.main(version_base="1.3", config_path=str(conf), config_name="train")(task)()


if __name__ == "__main__":
    main()
