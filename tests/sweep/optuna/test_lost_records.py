"""A study whose last records were lost (a full disk mid-append, a torn journal record) still finishes, and
keeps the result of a trial that finished: real sweeps, a real journal cut where a crash would cut it, and a
real full disk (a tmpfs) under a sweep."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from tests.helpers.disk import small_disk
from tests.helpers.sweep import load_study, run, run_dirs
from trainscope.adapters.optuna_private import study_storage, trial_id
from trainscope.core.callback import Callback
from trainscope.core.view import TrainerView
from trainscope.sweep.optuna.study import complete_from_run_dir
from trainscope.trial.attributes import OWNER_ATTR, RUN_DIR_ATTR
from trainscope.trial.channel import TrialAddress
from trainscope.trial.storage import open_storage

ARGS = ["-m", "hparams_search=synthetic", "hydra/sweeper/pruner=none", "trainer.max_epochs=1"]


def records(journal: Path) -> list[dict]:
    return [json.loads(line) for line in journal.read_bytes().splitlines()]


def cut_before(journal: Path, index: int, torn: bool) -> None:
    """Keep the journal's records before `index`; `torn`: and half of that one, as a crash mid-append leaves."""
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:index]) + (lines[index][: len(lines[index]) // 2] if torn else b""))


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A two-trial study, complete; tests copy it."""
    sweep_dir = tmp_path_factory.mktemp("finished") / "sweep"
    result = run([*ARGS, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep_dir}"], sweep_dir.parent, data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir


def rerun(sweep_dir: Path, data_dir: Path) -> tuple[int, str, str]:
    result = run([*ARGS, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep_dir}"], sweep_dir.parent, data_dir)
    return result.returncode, result.stdout, result.stderr


def copy_of(finished_sweep: Path, tmp_path: Path) -> Path:
    """The finished sweep moved to `tmp_path/sweep`: every path it recorded (journal, owner file, run
    directories' `.hydra/` and metrics.json) rewritten, as if it had been run there."""
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(finished_sweep, sweep_dir)
    for path in sweep_dir.rglob("*"):
        if path.is_file() and (path.suffix in (".log", ".yaml", ".json") or path.name == ".sweep_owner"):
            path.write_bytes(path.read_bytes().replace(str(finished_sweep).encode(), str(sweep_dir).encode()))
    return sweep_dir


@pytest.mark.slow
def test_a_torn_complete_record_is_recovered_from_the_run_directory(
    finished_sweep: Path, tmp_path: Path, data_dir: Path
) -> None:
    """The COMPLETE record of trial 1 torn: its run's metrics.json holds the result, so it is not retrained."""
    sweep_dir = copy_of(finished_sweep, tmp_path)
    journal = sweep_dir / "optuna_journal.log"
    before = load_study(sweep_dir).trials[1]
    (complete,) = [i for i, r in enumerate(records(journal)) if r["op_code"] == 6 and r["trial_id"] == 1]
    cut_before(journal, complete, torn=True)

    code, stdout, stderr = rerun(sweep_dir, data_dir)
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "trial 1 had finished but its result was not recorded: COMPLETE from its run directory" in stdout
    trials = load_study(sweep_dir).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]  # no retry, no third trial
    assert trials[1].values == before.values
    assert len(run_dirs(sweep_dir)) == 2


@pytest.mark.slow
def test_a_trial_whose_owner_record_was_lost_is_retried_not_waited_for(
    finished_sweep: Path, tmp_path: Path, data_dir: Path
) -> None:
    """Trial 1 asked, but the record naming its owner never written (the issue's full disk): before, every
    rerun ended "1 still running in another process" (rc 0), forever."""
    sweep_dir = copy_of(finished_sweep, tmp_path)
    journal = sweep_dir / "optuna_journal.log"
    (owner,) = [
        i
        for i, r in enumerate(records(journal))
        if r["op_code"] == 9 and r["trial_id"] == 1 and OWNER_ATTR in r.get("system_attr", {})
    ]
    cut_before(journal, owner, torn=False)
    shutil.rmtree(run_dirs(sweep_dir)[1])  # the job never ran

    code, stdout, stderr = rerun(sweep_dir, data_dir)
    assert code == 0, stderr[-3000:]
    assert "still running" not in stdout
    assert "trial 1 was claimed but its owner was never recorded: marked FAIL, retried once" in stdout
    states = [t.state for t in load_study(sweep_dir).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]


class FillDiskAtFitEnd(Callback):
    """Fills the disk `$FILL_DISK` when trial `$FILL_AT_TRIAL`'s training ends (once)."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        if os.environ.get("TRAINSCOPE_TRIAL_NUMBER") != os.environ.get("FILL_AT_TRIAL"):
            return
        filler = Path(os.environ["FILL_DISK"]) / "filler"
        if not filler.exists():
            with open(filler, "wb") as handle, __import__("contextlib").suppress(OSError):
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()


@pytest.mark.slow
def test_a_full_disk_under_a_sweep_is_one_line_and_the_rerun_finishes(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with small_disk(tmp_path / "disk", 16 * 2**20) as disk:
        sweep_dir = disk / "sweep"
        args = [*ARGS, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep_dir}"]
        args.append(f"+callbacks.fill._target_={__name__}.FillDiskAtFitEnd")
        monkeypatch.setenv("FILL_DISK", str(disk))
        monkeypatch.setenv("FILL_AT_TRIAL", "1")
        result = run(args, tmp_path, data_dir)
        assert result.returncode == 2, result.stderr[-3000:]
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors and errors[-1].startswith("error: disk full while the sweep wrote"), result.stderr[-3000:]
        assert "rerun the same command to continue the study" in errors[-1]

        (disk / "filler").unlink()
        monkeypatch.setenv("FILL_AT_TRIAL", "none")
        again = run(args, tmp_path, data_dir)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "still running" not in again.stdout
        counted = [t for t in load_study(sweep_dir).trials if t.state == TrialState.COMPLETE]
        assert len(counted) >= 1, again.stdout[-3000:]


def abandoned_trial(tmp_path: Path, metrics: dict, study_name: str = "s", number: int | None = None) -> tuple:
    """A journal study with one RUNNING trial whose run directory holds `metrics` (and names its trial)."""
    study = optuna.create_study(
        study_name="s", storage=open_storage(str(tmp_path / "journal.log")), direction="maximize"
    )
    study.set_metric_names(["val/acc_best"])
    trial = study.ask({"lr": FloatDistribution(0.1, 1.0)})
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    address = TrialAddress("journal.log", study_name, trial_id(trial), trial.number if number is None else number)
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"env_set": address.env()}}}))
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    study_storage(study).set_trial_user_attr(trial_id(trial), RUN_DIR_ATTR, str(run_dir))
    return study, study.get_trials()[0]


FINISHED = {"status": "completed", "optimized_metric": "val/acc_best", "final": {"val/acc_best": 0.75}}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
@pytest.mark.parametrize(
    ("change", "recovered"),
    [
        ({}, True),
        ({"status": "stopped_early"}, True),
        ({"status": "interrupted"}, False),  # the run did not finish: retried, continuing from its checkpoint
        ({"status": "failed"}, False),
        ({"final": {"val/acc_best": "0.75"}}, False),  # not a number
        ({"final": {"val/acc_best": float("nan")}}, False),
        ({"final": {"val/acc_best": True}}, False),
        ({"optimized_metric": "val/loss"}, False),  # another objective than the study's
        ({"final": []}, False),
        ({"study": "another"}, False),  # the run directory names another study's trial
        ({"number": 7}, False),  # ... or another trial of this study
    ],
)
def test_only_a_finished_run_of_this_trial_completes_it(change: dict, recovered: bool, tmp_path: Path) -> None:
    """The run directory is untrusted input (in-process: a real journal study and files on disk)."""
    identity = {key: change.pop(key) for key in ("study", "number") if key in change}
    study, trial = abandoned_trial(tmp_path, {**FINISHED, **change}, identity.get("study", "s"), identity.get("number"))
    assert complete_from_run_dir(study, trial) is recovered
    (stored,) = study.get_trials()
    assert stored.state == (TrialState.COMPLETE if recovered else TrialState.RUNNING)
    assert stored.values == ([0.75] if recovered else None)
