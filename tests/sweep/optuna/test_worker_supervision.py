"""The workers' supervision rule on the launcher path: a worker job killed mid-trial through `hydra/launcher=joblib`.

joblib ends its whole pool when one of its processes dies, so the batch comes back lost: each worker is
reported with how it ended, its running trial is failed as interrupted and queued again once, and since no
trial finished the sweep stops with one line instead of starting workers again; the same command then
finishes the study, each retry continuing its interrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.helpers.cli import REPO_ROOT, cli_env
from trainscope.sweep.optuna.study import count_trials
from trainscope.trial.storage import open_storage


def sweep_command(sweep_dir: Path) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "-m",
        "hparams_search=synthetic",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra/launcher=joblib",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        "hydra/sweeper/pruner=none",
        "trainer.max_epochs=8",
        "data.num_samples=2048",  # epochs long enough that no trial ends before the kill
    ]


@pytest.mark.slow
def test_a_killed_launcher_worker_fails_its_trial_once_and_the_rerun_finishes_the_study(
    tmp_path: Path, data_dir: Path
) -> None:
    sweep_dir, log = tmp_path / "sweep", tmp_path / "sweep.log"
    env = cli_env(tmp_path / "outputs", data_dir)
    with open(log, "w") as handle:
        process = subprocess.Popen(
            sweep_command(sweep_dir), cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 180
    while not list(sweep_dir.glob("*/checkpoints/last.pt")):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    victim = int(json.loads((sweep_dir / "optuna_worker_0" / "worker.json").read_text())["pid"])
    os.kill(victim, signal.SIGKILL)

    assert process.wait(timeout=120) == 2, log.read_text()[-3000:]
    output = log.read_text()
    assert "[optuna] worker 0 ended abnormally: TerminatedWorkerError" in output
    assert "marked FAIL (interrupted) and retried once" in output
    assert (
        output.strip()
        .splitlines()[-1]
        .startswith("error: the sweep's workers ended without finishing a trial since the last ones started (worker ")
    )

    rerun = subprocess.run(
        sweep_command(sweep_dir), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "optuna: 2 trials: 2 complete, 0 pruned, 0 failed" in rerun.stdout
    study = optuna.load_study(study_name="synthetic", storage=open_storage(str(sweep_dir / "optuna_journal.log")))
    counts = count_trials(study.trials)
    assert (counts.complete, counts.running, counts.waiting) == (2, 0, 0) and counts.interrupted >= 1
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study.trials)
