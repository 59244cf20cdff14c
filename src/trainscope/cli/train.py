"""`python train.py` / `trainscope-train`: Hydra composes the config, `trainscope.session.run` trains.

torch is imported only inside the task, so `--help` and `--cfg job` answer instantly.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from trainscope.cli.errors import as_user_error, exit_on_user_error
from trainscope.cli.saved_config import save_run_config
from trainscope.config.overrides import check_group_choices, user_config_dirs
from trainscope.config.paths import config_dir, with_user_config_dir
from trainscope.config.resolvers import register_resolvers
from trainscope.config.schema import validate_config
from trainscope.config.yaml_files import check_yaml_tree
from trainscope.core.errors import report_user_error
from trainscope.core.interruption import RunInterrupted
from trainscope.core.run_lock import run_lock

log = logging.getLogger("trainscope")


def task(cfg: DictConfig) -> float | tuple[float, ...]:
    """Hydra's task function: one run; returns `optimized_metric` for sweepers."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        save_run_config(run_dir, cfg)
        validate_config(cfg)
        from trainscope.session.run import train  # torch loads here, not at --help

        with run_lock(run_dir):  # no resume= (nor a second sweep) may write into a run that is training
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
    # A full disk makes train.log writes fail too: the run reports that once, not as a traceback per log line.
    logging.raiseExceptions = False
    with contextlib.ExitStack() as held:
        with exit_on_user_error():
            conf = config_dir()
            check_yaml_tree(conf)
            if any(argument.startswith(("resume=", "allow_targets=", "+allow_targets=")) for argument in sys.argv[1:]):
                from trainscope.cli.resume_arguments import (  # composes the saved config: only when resuming
                    find_resume_dir,
                    resume_arguments,
                )

                arguments = resume_arguments(sys.argv[1:], conf)  # continue that run in its own directory
                run_dir, _ = find_resume_dir(sys.argv[1:])
                if run_dir is not None:
                    held.enter_context(run_lock(run_dir))  # before Hydra rewrites its .hydra/ files
                sys.argv[1:] = arguments
            sys.argv[1:] = with_user_config_dir(sys.argv[1:])  # ./conf: the user's own options
            for user_dir in user_config_dirs(sys.argv[1:]) or []:
                check_yaml_tree(user_dir)
            check_group_choices(sys.argv[1:], conf)
        hydra.main(version_base="1.3", config_path=str(conf), config_name="train")(task)()


if __name__ == "__main__":
    main()
