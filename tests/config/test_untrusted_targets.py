"""A run directory is untrusted input: every `_target_` its saved config names is checked before `eval.py` or
`resume=` builds anything (and `eval.py checkpoint=<path>` takes the odd paths run directories have). Real
`train.py` and `eval.py` processes on real run directories."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers.cli import REPO_ROOT, TINY, TrainCLI, error_line, resume_cli, run_script, snapshot
from tests.helpers.run_dirs import plant_pickle
from trainscope.config.targets import check_targets, targets_in
from trainscope.core.errors import ConfigError

LOCAL_CALLBACK = "tests.callbacks.test_monitoring.RecordHooks"  # a module of the directory the runs are made in


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A finished two-epoch run (with a callback from a module of the current directory), never modified:
    tests copy it."""
    output_root = tmp_path_factory.mktemp("outputs")
    result = run_script("train.py", [*TINY, f"+callbacks.recorder._target_={LOCAL_CALLBACK}"], output_root, data_dir)
    assert result.returncode == 0, result.stderr
    (run_dir,) = output_root.glob("runs/*/*")
    return run_dir


@pytest.fixture
def run_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of the trained run under a name with `=` and `,`, as run directories have."""
    copy = tmp_path / "runs" / "12-00-00_model=mlp,optimizer.lr=0.1"
    shutil.copytree(trained_run, copy)
    return copy


def evaluate(run_dir: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_script("eval.py", [f"run={run_dir}", *args], run_dir.parent / "unused", data_dir)


# ---------------------------------------------------------------- eval.py checkpoint=<path>


@pytest.mark.slow
def test_eval_takes_a_checkpoint_path_unquoted(run_copy: Path, data_dir: Path) -> None:
    previous = run_copy / "checkpoints" / "previous.pt"
    assert previous.is_file()
    result = evaluate(run_copy, data_dir, f"checkpoint={previous}")  # `=` and `,` in the path, no quotes
    assert result.returncode == 0, result.stderr
    assert json.loads((run_copy / "metrics.json").read_text())["evaluated_checkpoint"] == str(previous)
    assert [line.split()[0] for line in result.stdout.splitlines() if line.startswith("test/")] == [
        "test/loss",
        "test/acc",
    ]


# ---------------------------------------------------------------- a run directory is untrusted input


def craft_model_target(run_dir: Path, payload: Path) -> None:
    """What an attacker edits: the saved config and the overrides resume= replays, both naming torch.load, and
    the checkpoints' config hash (dropped: a checkpoint without one is not compared)."""
    for checkpoint in (run_dir / "checkpoints").glob("*.pt"):
        state = torch.load(checkpoint, weights_only=True)
        state.pop("config_hash", None)
        torch.save(state, checkpoint)
    config_file = run_dir / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["model"] = {"_target_": "torch.load", "f": str(payload), "weights_only": False}
    config_file.write_text(yaml.safe_dump(config))
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    overrides = [item for item in yaml.safe_load(overrides_file.read_text()) if not item.startswith("model")]
    overrides += ["~model", "+model._target_=torch.load", f"+model.f='{payload}'", "+model.weights_only=false"]
    overrides_file.write_text(yaml.safe_dump(overrides))


@pytest.mark.slow
def test_eval_refuses_a_crafted_target_before_building_anything(run_copy: Path, data_dir: Path) -> None:
    payload, marker = plant_pickle(run_copy)
    craft_model_target(run_copy, payload)
    before = snapshot(run_copy)

    line = error_line(evaluate(run_copy, data_dir))
    assert "model._target_=torch.load" in line and "untrusted" in line and "allow_targets=[torch]" in line
    assert not marker.exists(), "the pickle's code ran"
    (run_copy / "eval.log").unlink()  # eval's own (empty) log: the only file eval.py added
    assert snapshot(run_copy) == before


@pytest.mark.slow
def test_resume_refuses_a_crafted_target_before_building_anything(run_copy: Path, data_dir: Path) -> None:
    payload, marker = plant_pickle(run_copy)
    craft_model_target(run_copy, payload)
    before = snapshot(run_copy)

    result = resume_cli(run_copy, data_dir, "trainer.max_epochs=3")
    assert result.returncode == 2
    line = error_line(result)
    assert "model._target_=torch.load" in line and "allow_targets=[torch]" in line
    assert not marker.exists(), "the pickle's code ran"
    assert snapshot(run_copy) == before


@pytest.mark.slow
def test_a_run_made_elsewhere_builds_local_modules_only_when_allowed(run_copy: Path, data_dir: Path) -> None:
    # Made in this directory (the tests' cwd): its own callback module is trusted, for eval and resume alike.
    assert evaluate(run_copy, data_dir).returncode == 0
    resumed = resume_cli(run_copy, data_dir, "trainer.max_epochs=3")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_copy / "metrics.json").read_text())["epochs_run"] == 3

    hydra_file = run_copy / ".hydra" / "hydra.yaml"
    hydra_config = yaml.safe_load(hydra_file.read_text())
    hydra_config["hydra"]["runtime"]["cwd"] = "/somewhere/else"
    hydra_file.write_text(yaml.safe_dump(hydra_config))
    line = error_line(evaluate(run_copy, data_dir))
    assert f"callbacks.recorder._target_={LOCAL_CALLBACK}" in line and "allow_targets=[tests]" in line
    assert evaluate(run_copy, data_dir, "allow_targets=[tests]").returncode == 0


def test_allow_targets_belongs_to_resume_and_eval_only(train: TrainCLI) -> None:
    line = error_line(train(*TINY, "allow_targets=[my_pkg]"))
    assert "allow_targets= applies to resume=" in line


@pytest.mark.parametrize(
    ("config", "refused"),
    [
        ({"model": {"_target_": "builtins.eval", "_args_": ["1"]}}, "model._target_=builtins.eval"),
        (  # nested inside an allowed class, as a partial
            {"callbacks": {"c": {"_target_": "torch.nn.Sequential", "_args_": [{"_target_": "os.system"}]}}},
            "callbacks.c._args_[0]._target_=os.system",
        ),
        ({"x": {"_target_": "torch.load", "_partial_": True}}, "x._target_=torch.load"),
        # reached through a trusted module's own `import torch`: resolves to torch.load, not a class of it
        ({"x": {"_target_": "trainscope.data.build.torch.load"}}, "is not a class of trainscope.data"),
        # a function of a trusted package that writes files
        ({"x": {"_target_": "trainscope.data.cache.write_cache"}}, "is not a class of trainscope.data"),
        ({"x": {"_target_": "${model._target_}"}, "model": {}}, "is not a plain dotted name"),
    ],
    ids=["function", "nested_args", "partial", "through_an_import", "trusted_package_function", "interpolated"],
)
def test_every_target_of_the_config_is_checked(config: dict, refused: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="untrusted") as error:
        check_targets(config, tmp_path, allowed=[], command="run")
    assert refused in str(error.value)


def bundled_targets() -> set[str]:
    """Every concrete `_target_` a bundled app config group names (`conf/hydra/` is Hydra's own config, which
    `eval.py` and `resume=` never read from a run directory)."""
    found = set()
    for path in (REPO_ROOT / "conf").rglob("*.yaml"):
        if path.relative_to(REPO_ROOT / "conf").parts[0] == "hydra":
            continue
        for _, target in targets_in(yaml.safe_load(path.read_text()) or {}):
            if target != "???":  # conf/model/custom.yaml, conf/data/custom.yaml: the user names it
                found.add(target)
    return found


@pytest.mark.slow
def test_the_bundled_configs_targets_are_allowed(trained_run: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((trained_run / ".hydra" / "config.yaml").read_text())
    config["callbacks"].pop("recorder")
    targets = bundled_targets()
    assert {"trainscope.data.build_custom_data", "trainscope.models.timm_model", "torch.optim.SGD"} <= targets
    for target in [*targets, "torch.nn.Linear"]:
        config[target] = {"_target_": target}
    check_targets(config, tmp_path, allowed=[], command="run")  # raises if any is refused


# ---------------------------------------------------------------- bad values


# ---------------------------------------------------------------- the HParams Trial ID
