"""trainscope as another project gets it: its wheel installed (not editable) and used from folders that are
not a trainscope checkout.

The wheel is built from a copy of the sources and installed with `--no-deps` into a fresh virtualenv whose
only other path is the test environment's site-packages (for torch, Hydra, Optuna): the checkout's `src/` is
not on its `sys.path` (a `.pth` file there is not read), so every run below uses the installed copy.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.helpers.cli import REPO_ROOT
from trainscope.trial.storage import open_storage

pytestmark = pytest.mark.slow  # every test here runs real processes for more than ~5 s

SOURCES = ("pyproject.toml", "README.md", "src", "conf", "experiments")
TINY_RUN = ["data=synthetic", "data.num_samples=128", "model=mlp", "trainer.max_epochs=1", "logging.progress_bar=false"]


@dataclass(frozen=True)
class Installation:
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def script(self, name: str) -> Path:
        return self.venv / "bin" / name

    def run(self, command: list[str | Path], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`command` in `cwd` with nothing of the test session's trainscope settings in its environment."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TRAINSCOPE_", "PYTHON"))}
        env.update(HYDRA_FULL_ERROR="0", PYTHONUNBUFFERED="1")
        return subprocess.run(
            [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )


def build_wheel(destination: Path) -> Path:
    """The wheel `pip wheel .` makes from a fresh copy of the sources (no stale `build/` of the checkout)."""
    sources = destination / "sources"
    sources.mkdir()
    for name in SOURCES:
        origin = REPO_ROOT / name
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(origin, sources / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(origin, sources / name)
    wheelhouse = destination / "wheelhouse"
    command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", wheelhouse, sources]
    subprocess.run([sys.executable, "-m", *map(str, command)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheelhouse.glob("trainscope-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    root = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies only: a path in a .pth file is added as it is, the .pth files inside it are not read.
    Path(purelib, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installation = Installation(wheel, venv)
    # --ignore-installed: the test environment's own (editable) trainscope is visible through the .pth
    pip = ["-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", wheel]
    result = installation.run([installation.python, *pip], cwd=root)
    assert result.returncode == 0, result.stderr
    return installation


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_wheel_holds_the_whole_config_tree_with_the_named_experiments(installed: Installation) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {name.removeprefix("trainscope/conf/") for name in wheel.namelist() if "/conf/" in name}
    in_repo = {str(path.relative_to(REPO_ROOT / "conf")) for path in (REPO_ROOT / "conf").rglob("*.yaml")}
    in_repo |= {f"experiment/{path.name}" for path in (REPO_ROOT / "experiments").glob("*.yaml")}
    assert "train.yaml" in shipped and "experiment/mnist_cnn_tune.yaml" in shipped
    assert shipped == in_repo


def test_the_installed_package_trains_from_an_empty_directory(installed: Installation, empty_dir: Path) -> None:
    probe = (
        "import json, sys, trainscope, hydra_plugins.trainscope_optuna_sweeper as sweeper\n"
        "from trainscope.config.paths import config_dir\n"
        "print(json.dumps({'trainscope': trainscope.__file__, 'sweeper': sweeper.__file__,"
        " 'conf': str(config_dir()), 'path': sys.path}))"
    )
    where = json.loads(installed.run([installed.python, "-c", probe], cwd=empty_dir).stdout)
    for key in ("trainscope", "sweeper", "conf"):
        assert Path(where[key]).is_relative_to(installed.venv), where
    assert str(REPO_ROOT / "src") not in where["path"]

    result = installed.run([installed.script("trainscope-train"), *TINY_RUN], cwd=empty_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_dir,) = (empty_dir / "outputs" / "runs").glob("*/*")  # ./outputs of where it ran
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 1
    assert 0.0 <= metrics["final"]["test/acc"] <= 1.0


USER_CONFIGS = {
    # a search file of the user's own: the built-in sweeper option, a study of three trials
    "hparams_search/tiny_search.yaml": """
        # @package _global_
        defaults:
          - override /sweeper: optuna
        optimized_metric: val/acc_best
        hydra:
          sweeper:
            direction: maximize
            study_name: tiny_search
            n_trials: 3
            params:
              optimizer.lr: tag(log, interval(1e-3, 1e-1))
    """,
    # an experiment that picks the user's own data and model options
    "experiment/tiny.yaml": """
        # @package _global_
        defaults:
          - override /data: tiny_synthetic
          - override /model: tiny_mlp
        trainer:
          max_epochs: 2
          test: false
        logging:
          progress_bar: false
    """,
    # options that extend built-in ones through their defaults list
    "data/tiny_synthetic.yaml": """
        defaults:
          - synthetic
          - _self_
        num_samples: 96
        batch_size: 32
    """,
    "model/tiny_mlp.yaml": """
        defaults:
          - mlp
          - _self_
        hidden_sizes: [8]
    """,
    # a name the built-in tree already has: never read, and the user is told so
    "model/mlp.yaml": "_target_: not.Used\n",
}


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    """A project folder with its own `conf/` of options, as lightning-hydra-template users keep theirs."""
    project = tmp_path / "project"
    for name, text in USER_CONFIGS.items():
        path = project / "conf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(line.removeprefix(" " * 8) for line in text.strip("\n").splitlines()) + "\n")
    return project


def test_a_search_file_and_experiment_in_the_users_conf_run_as_a_sweep(
    installed: Installation, user_project: Path
) -> None:
    train = installed.script("trainscope-train")
    result = installed.run([train, "-m", "hparams_search=tiny_search", "experiment=tiny"], cwd=user_project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    (sweep_dir,) = (user_project / "outputs" / "multirun").glob("*/*")
    study = optuna.load_study(study_name="tiny_search", storage=open_storage(str(sweep_dir / "optuna_journal.log")))
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 3
    for trial in study.trials:
        config = yaml.safe_load((Path(trial.user_attrs["run_dir"]) / ".hydra" / "config.yaml").read_text())
        assert config["optimizer"]["lr"] == trial.params["optimizer.lr"]
        assert config["data"]["num_samples"] == 96 and config["data"]["dataset"] == "synthetic"
        assert config["model"]["hidden_sizes"] == [8] and config["model"]["_target_"] == "trainscope.models.MLP"


def test_the_users_options_are_named_and_found_through_config_dir(
    installed: Installation, user_project: Path, empty_dir: Path
) -> None:
    train = installed.script("trainscope-train")
    wrong = installed.run([train, "experiment=nope"], cwd=user_project)
    assert wrong.returncode == 2
    assert wrong.stderr.splitlines()[-1] == (
        "error: experiment=nope is not an option; choose one of: diabetes_regression, mnist_cnn_pareto, "
        "mnist_cnn_tune, shakespeare_char_cpu, tiny"
    )

    config_dir = f"--config-dir={user_project / 'conf'}"
    composed = installed.run([train, config_dir, "experiment=tiny", "--cfg", "job"], cwd=empty_dir)
    assert composed.returncode == 0, composed.stderr
    config = yaml.safe_load(composed.stdout)
    assert config["data"]["num_samples"] == 96 and config["model"]["hidden_sizes"] == [8]
    hidden = user_project / "conf" / "model" / "mlp.yaml"
    assert f"warning: {hidden} is not used: the built-in config tree has its own model/mlp.yaml" in composed.stderr

    broken = user_project / "conf" / "data" / "broken.yaml"
    broken.write_text("num_samples: [96\n")
    malformed = installed.run([train, "experiment=tiny"], cwd=user_project)
    assert malformed.returncode == 2
    assert malformed.stderr.splitlines()[-1].startswith(f"error: {broken}:2:1: malformed YAML")


def test_another_hydra_app_prunes_with_the_installed_sweeper(installed: Installation, empty_dir: Path) -> None:
    shutil.copytree(REPO_ROOT / "examples" / "optuna_pruning", empty_dir / "app")
    sweep_dir = empty_dir / "sweep"
    sweep = ["-m", f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.n_trials=8"]
    result = installed.run([installed.python, "-W", "error", "app.py", *sweep], cwd=empty_dir / "app")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["counts"]["pruned"] > 0
    assert results["counts"]["complete"] + results["counts"]["pruned"] == 8


def test_a_run_with_the_users_options_resumes_from_another_directory(
    installed: Installation, user_project: Path, empty_dir: Path
) -> None:
    train = installed.script("trainscope-train")
    first = installed.run([train, "experiment=tiny", "trainer.max_epochs=1"], cwd=user_project)
    assert first.returncode == 0, first.stderr[-3000:]
    (run_dir,) = (user_project / "outputs" / "runs").glob("*/*")
    # the run's own ./conf comes back from its .hydra/hydra.yaml: experiment=tiny is found again
    resumed = installed.run([train, f"resume={run_dir}", "trainer.max_epochs=2"], cwd=empty_dir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 2
    changed = installed.run([train, f"resume={run_dir}", "trainer.max_epochs=3", "data.num_samples=32"], empty_dir)
    assert changed.returncode == 2
    assert changed.stderr.splitlines()[-1].startswith(f"error: resume: data.num_samples is 96 in {run_dir} but 32 now")
