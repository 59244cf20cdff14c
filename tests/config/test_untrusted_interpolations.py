"""A run directory's config is inert: no interpolation in it may build objects, read the environment or run
anything (`trainscope.config.inert`). Every resolver registered in the process is tried, listed from OmegaConf's
registry at test time (OmegaConf's, Hydra's, trainscope's), through the real readers: `eval.py`'s
`load_run_config`, `resume=`'s argument rewriting and the `.hydra/hydra.yaml` readers; and one real `eval.py`
process with the `torch.load(weights_only=False)` payload the issue found."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hydra.core.utils import setup_globals

from tests.helpers.cli import REPO_ROOT, error_line, run_script
from tests.helpers.run_dirs import plant_pickle
from trainscope.adapters.omegaconf_private import registered_resolvers
from trainscope.cli.resume_arguments import resume_arguments
from trainscope.config.inert import INERT_RESOLVERS, interpolation_refusal
from trainscope.config.resolvers import register_resolvers
from trainscope.config.targets import run_made_in
from trainscope.core.errors import ConfigError
from trainscope.runs.best_config import best_config
from trainscope.session.evaluate_run import evaluate_run
from trainscope.trial.channel import recorded_trial


def every_resolver() -> list[str]:
    """What OmegaConf, Hydra (`setup_globals`, as `@hydra.main` calls it) and trainscope register."""
    register_resolvers()
    setup_globals()
    names = registered_resolvers()
    assert {"oc.create", "oc.decode", "oc.env", "hydra", "now", "unique_dir"} <= set(names)
    return names


def payloads(resolver: str, pickle: Path) -> list[str]:
    """Ways to hand `torch.load(weights_only=False)` to the builder through `resolver`: a config argument (what
    `oc.create` builds), the same as a string (what `oc.decode` parses), and the config nested in a reference."""
    target = f"{{_target_: torch.load, f: '{pickle}', weights_only: false}}"
    return [f"${{{resolver}:{target}}}", f'${{{resolver}:"{target}"}}', f"${{data.${{{resolver}:x}}}}"]


def crafted_run(directory: Path, value: str) -> Path:
    """A run directory whose saved config and overrides set `model.hidden` to `value`, with a checkpoint file."""
    run_dir = directory / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"weights")
    config = {"model": {"_target_": "trainscope.models.MLP", "hidden": value}, "data": {"x": 1}}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["model=mlp", f"model.hidden={value}"]))
    return run_dir


@pytest.mark.parametrize("resolver", every_resolver())
def test_no_resolver_reaches_code_through_eval_or_resume(resolver: str, tmp_path: Path) -> None:
    """Through a container argument every resolver is refused; through a string or a nested key, every one but
    the read-only few (a string handed to `now` or `dir_name` stays a string)."""
    pickle, marker = plant_pickle(tmp_path)
    container, *others = payloads(resolver, pickle)
    for value in [container, *([] if resolver in INERT_RESOLVERS else others)]:
        run_dir = crafted_run(tmp_path, value)
        with pytest.raises(ConfigError, match="untrusted input") as refused:
            evaluate_run(run_dir)
        assert f"model.hidden={value}" in str(refused.value) and "config.yaml" in str(refused.value)
        with pytest.raises(ConfigError, match="untrusted input") as refused:
            resume_arguments([f"resume={run_dir}"], REPO_ROOT / "conf")
        assert f"model.hidden={value}" in str(refused.value) and "overrides.yaml" in str(refused.value)
    assert not marker.exists(), "torch.load(weights_only=False) ran the pickle"


@pytest.mark.parametrize("resolver", every_resolver())
def test_only_trainscope_own_interpolations_pass(resolver: str) -> None:
    """A plain argument passes only for the read-only resolvers trainscope's own configs use."""
    plain = f"${{{resolver}:TRAINSCOPE_DATA_DIR}}"
    assert (interpolation_refusal(plain) is None) == (resolver in INERT_RESOLVERS)


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("${oc.env:HOME}", "reads the environment variable HOME"),
        ("${oc.env:TRAINSCOPE_${model.x}}", "reads the environment variable"),
        ("${oc.env:'TRAINSCOPE_X'}", "reads the environment variable"),
        ("${oc.env:TRAINSCOPE_X,${oc.env:AWS_SECRET_ACCESS_KEY}}", "AWS_SECRET_ACCESS_KEY"),
        ("${hydra:${oc.select:a}}", "calls the resolver oc.select"),
        ("${now:[1]}", "passes a [...] or {...} argument to now"),
        ("${oc.env:", "is not an interpolation OmegaConf can parse"),
    ],
)
def test_an_inert_resolver_misused_is_refused(value: str, refused: str) -> None:
    assert refused in (interpolation_refusal(value) or "")


def test_what_trainscope_itself_writes_is_inert() -> None:
    """Every interpolation of a bundled app config (what a run's saved config.yaml holds) passes."""
    found = 0
    for path in (REPO_ROOT / "conf").rglob("*.yaml"):
        if path.relative_to(REPO_ROOT / "conf").parts[0] == "hydra":
            continue  # Hydra's own config: read from a run directory only without resolving it
        for line in path.read_text().splitlines():
            value = line.split(":", 1)[1].strip() if ":" in line and "${" in line else ""
            if value.startswith("${"):
                found += 1
                assert interpolation_refusal(value.strip("'\"")) is None, f"{path}: {value}"
    assert found > 10
    assert interpolation_refusal(r"\${oc.create:{a: 1}}") is None  # escaped: text, never resolved


def test_saved_hydra_config_is_read_without_resolving_it(tmp_path: Path) -> None:
    """`.hydra/hydra.yaml` is read for a few values (where the run was made, its trial); a resolver in one of
    them (`unique_dir` creates directories) is never called."""
    register_resolvers()
    made = tmp_path / "made-by-a-resolver"
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    crafted = {
        "hydra": {
            "runtime": {"cwd": f"${{unique_dir:{made}}}"},
            "job": {"env_set": {"TRAINSCOPE_TRIAL_NUMBER": f"${{unique_dir:{made}_2}}"}},
        }
    }
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(crafted))
    assert not run_made_in(run_dir, tmp_path)
    assert recorded_trial(run_dir) is None
    assert not list(tmp_path.glob("made-by-a-resolver*"))


def test_best_yaml_does_not_carry_an_interpolation_over() -> None:
    content, notes = best_config(["optimizer.lr=0.1", "model.hidden=${oc.create:[1]}", "data.x=${oc.env:HOME}"], set())
    assert content == {"optimizer": {"lr": 0.1}}
    assert [note.split(" (")[0] for note in notes] == [
        "not carried over: model.hidden=${oc.create:[1]}",
        "not carried over: data.x=${oc.env:HOME}",
    ]


@pytest.mark.slow
def test_eval_refuses_the_issue_payload_in_one_line(tmp_path: Path, data_dir: Path) -> None:
    """The case of the issue, end to end: `eval.py run=<dir>` whose config builds torch.load through oc.create."""
    pickle, marker = plant_pickle(tmp_path)
    run_dir = crafted_run(tmp_path, payloads("oc.create", pickle)[0])
    result = run_script("eval.py", [f"run={run_dir}"], tmp_path / "unused", data_dir)
    assert result.returncode == 2
    line = error_line(result)
    assert "calls the resolver oc.create" in line and "untrusted input" in line
    assert "Traceback" not in result.stderr
    assert not marker.exists()
