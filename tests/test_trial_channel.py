"""The trial channel: the Optuna sweeper tells a job it is a trial only through `hydra.job.env_set`.

Nothing reaches the app's config, its saved overrides or its run directory name; trainscope's own loop
prunes through the same channel; a trial run resumed by hand runs outside the study and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.helpers.cli import resume_cli
from trainscope.core.errors import ConfigError
from trainscope.sweep import trial
from trainscope.trial.channel import NUMBER_VAR, STORAGE_VAR, STUDY_VAR, TRIAL_ID_VAR, TrialAddress

SEARCH = ["hparams_search=synthetic", "logging.log_every_n_steps=4", "trainer.max_epochs=2"]


def test_no_trial_outside_a_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (STORAGE_VAR, STUDY_VAR, TRIAL_ID_VAR, NUMBER_VAR):
        monkeypatch.delenv(var, raising=False)
    assert trial() is None


def test_a_half_set_channel_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=f"{STORAGE_VAR} is set but {STUDY_VAR} is not"):
        TrialAddress.from_env({STORAGE_VAR: "/tmp/journal.log"})


def test_address_round_trips_through_the_environment() -> None:
    address = TrialAddress("sqlite:////tmp/s.db", "study, with comma", trial_id=7, number=3, pruning_metric=None)
    assert TrialAddress.from_env(address.env()) == address


def test_trials_get_nothing_in_their_config_and_a_resumed_trial_runs_outside_the_study(
    train: Any, tmp_path: Path, data_dir: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = train(
        "-m",
        *SEARCH,
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.n_trials=1",
        "hydra/sweeper/pruner=median",
        # Run dirs named by the overrides alone, as the official plugin's docs suggest:
        "hydra.sweep.subdir=${hydra.job.override_dirname}",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_dir,) = [path for path in sweep_dir.iterdir() if (path / ".hydra").is_dir()]  # not report/ (issue 26)
    assert "TRAINSCOPE" not in run_dir.name and "optuna" not in run_dir.name and "=" in run_dir.name
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert "optuna_trial" not in config and "optuna_pruning" not in (config["callbacks"] or {})
    saved_overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert not [item for item in saved_overrides if "env_set" in item or "optuna" in item]

    study = optuna.load_study(study_name="synthetic", storage=storage)
    (finished,) = study.trials
    assert finished.state == TrialState.COMPLETE
    assert sorted(finished.intermediate_values) == [1, 2]  # the loop's pruning callback reported each epoch

    resumed = resume_cli(run_dir, data_dir, "trainer.max_epochs=3")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming trial 0 of study 'synthetic' outside the study" in resumed.stderr
    assert yaml.safe_load((run_dir / "metrics.json").read_text())["epochs_run"] == 3
    (after,) = optuna.load_study(study_name="synthetic", storage=storage).trials
    assert sorted(after.intermediate_values) == [1, 2] and after.state == TrialState.COMPLETE
