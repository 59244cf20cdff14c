"""`python train.py` / `trainscope-train`: Hydra composes the config, `trainscope.session.run` trains.

torch is imported only inside the task, so `--help` and `--cfg job` answer instantly.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from trainscope.callbacks.stop_on_signal import StopOnSignal
from trainscope.cli.errors import as_user_error, exit_on_user_error, hydra_errors_in_one_line
from trainscope.cli.process_exit import exit_after
from trainscope.cli.saved_config import save_run_config
from trainscope.config.groups.trainer import TrainerConfig
from trainscope.config.overrides import check_group_choices, check_interpolations, expand_home, user_config_dirs
from trainscope.config.paths import config_dir, with_user_config_dir
from trainscope.config.resolvers import created_by_unique_dir, register_resolvers
from trainscope.config.schema import validate_config
from trainscope.config.yaml_files import check_yaml_tree
from trainscope.core.errors import ConfigError, report_user_error
from trainscope.core.interruption import RunInterrupted
from trainscope.core.run_dir import holds_only_startup_files
from trainscope.core.run_lock import run_lock
from trainscope.distributed import torchrun_job
from trainscope.distributed.environment import in_torchrun_job

log = logging.getLogger("trainscope")
# At import, not only in main(): a launcher's worker process (joblib, submitit) imports this module to
# unpickle `task`, then composes each job's config, whose run-directory names use these resolvers.
register_resolvers()

RESUME_ARGUMENTS = ("resume=", "allow_targets=", "+allow_targets=")
"""Arguments handled before Hydra starts (`trainscope.cli.resume_arguments`)."""


MODE_FLAGS = {
    "-m": "--multirun", "--multirun": "--multirun", "-c": "--cfg", "--cfg": "--cfg", "-i": "--info",
    "--info": "--info", "-sc": "--shell-completion", "--shell-completion": "--shell-completion", "--run": "--run",
}  # fmt: skip
"""Hydra's modes of `python train.py`: it takes one at a time."""


def check_one_mode(arguments: list[str]) -> None:
    """`-m ... --cfg hydra` is one line, not the ValueError traceback Hydra raises for two modes at once."""
    modes = list(dict.fromkeys(MODE_FLAGS[argument] for argument in arguments if argument in MODE_FLAGS))
    if len(modes) > 1:
        raise ConfigError(
            f"{' and '.join(modes)} cannot be combined: Hydra runs one mode at a time; keep one (a sweep's "
            "settings: the same command without -m, e.g. python train.py --cfg hydra hparams_search=mnist_cnn)"
        )


def task(cfg: DictConfig) -> float | tuple[float, ...]:
    """Hydra's task function: one run; returns `optimized_metric` for sweepers."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    writes_run_dir = True  # rank 0 of a torchrun job, or the only process
    if in_torchrun_job():
        group = torchrun_job.join()  # joined in main(): returns that group
        writes_run_dir = group.is_main
        if group.is_main:
            torchrun_job.announce_run(group, sys.argv[1:], run_dir)
        else:
            torchrun_job.log_as_rank(group.rank)
    # From here on a SIGTERM or Ctrl-C is a stop request, not a silent exit: start-up (building the data and
    # the model) ends, the run stops before its first step with a checkpoint, and it is recorded `interrupted`.
    # A sweep job too (a grid's), unless its sweeper handles the signals itself (the Optuna sweeper does).
    unhandled = signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)
    stop_on_signal = StopOnSignal().install() if not multirun or unhandled else None
    try:
        if writes_run_dir:
            save_run_config(run_dir, cfg)
        validate_config(cfg)
        devices = TrainerConfig.from_config(cfg.trainer).devices
        if devices > 1 and not in_torchrun_job():
            if stop_on_signal is not None:
                stop_on_signal.restore()  # torch's elastic agent handles the signals of its processes
            from trainscope.session.run import train_on_devices  # torch's elastic agent starts the processes

            return train_on_devices(cfg, run_dir, devices, list(HydraConfig.get().overrides.task)).objective
        from trainscope.session.run import train  # torch loads here, not at --help

        # No resume= (nor a second sweep) may write into a run that is training; the ranks of one run share it.
        with run_lock(run_dir) if writes_run_dir else contextlib.nullcontext():
            return train(cfg, run_dir, stop_on_signal).objective
    except RunInterrupted as interrupted:  # checkpoint, metrics.json and TensorBoard are written
        if multirun:
            raise KeyboardInterrupt from interrupted  # the sweep stops too, as after a Ctrl-C
        sys.exit(interrupted.exit_code)
    except Exception as error:
        user_error = as_user_error(error)
        if user_error is None:
            raise  # a bug: keep the traceback
        if multirun:
            log.error("%s", user_error)
            raise user_error from error  # the sweeper records this job as failed and goes on
        _record_single_run_failure(run_dir, user_error)
        report_user_error(user_error)


def _record_single_run_failure(run_dir: Path, error: Exception) -> None:
    """Stderr gets the one `error:` line; train.log keeps it too, unless the run never started.

    A run that failed before training (bad data, a config typo) in an auto-named directory of its own
    (`unique_dir` made it) wrote only what Hydra writes at the start (`.hydra/`, `train.log`): that folder is
    removed, so `outputs/runs/` lists runs, not mistakes. A directory the user named (`hydra.run.dir=...`), a
    resumed run or a run that trained (checkpoints, events) is never removed; the error goes to its train.log,
    and a directory with only `.hydra/` and `train.log` stays free for the next run.
    """
    root = logging.getLogger()
    files = [handler for handler in root.handlers if isinstance(handler, logging.FileHandler)]
    if created_by_unique_dir(run_dir) and holds_only_startup_files(run_dir):
        for handler in files:
            handler.close()
            root.removeHandler(handler)
        shutil.rmtree(run_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            run_dir.parent.rmdir()  # the day's folder, when this was its only run
        return
    details = getattr(error, "details", "")  # the traceback of the user's code that raised, for train.log only
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s%s", (error, f"\n{details}" * bool(details)), None)
    for handler in files:  # not the console: stderr already shows the error once
        handler.handle(record)


def main() -> None:
    register_resolvers()
    # A full disk makes train.log writes fail too: the run reports that once, not as a traceback per log line.
    logging.raiseExceptions = False
    with contextlib.ExitStack() as held:
        with exit_on_user_error():
            conf = config_dir()
            check_one_mode(sys.argv[1:])
            check_yaml_tree(conf)
            group = torchrun_job.join() if in_torchrun_job() else None
            if group is not None and any(argument in ("-m", "--multirun") for argument in sys.argv[1:]):
                raise ConfigError(
                    "torchrun trains one run; for a sweep of distributed runs use python train.py -m "
                    "trainer.devices=N ..."
                )
            if group is not None and not group.is_main:
                # Rank 0 decides the run directory (and resolves resume=); this rank waits for its command line.
                sys.argv[1:] = torchrun_job.follow_rank_zero(group)
            else:
                sys.argv[1:] = torchrun_job.restart_arguments(expand_home(sys.argv[1:]))
                if any(argument.startswith(RESUME_ARGUMENTS) for argument in sys.argv[1:]):
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
                check_interpolations(sys.argv[1:])
        try:
            with hydra_errors_in_one_line():
                hydra.main(version_base="1.3", config_path=str(conf), config_name="train")(task)()
        finally:
            torchrun_job.leave()


def entrypoint() -> None:
    """`python train.py` and `trainscope-train`: `main()` in a process of its own, which then exits without the
    interpreter's slow teardown (`trainscope.cli.process_exit`)."""
    exit_after(main)


if __name__ == "__main__":
    entrypoint()
