"""`python eval.py run=<run_dir>`: test a finished run from its directory alone, as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import TINY, run_script
from tests.helpers.events import read_events
from trainscope.core.errors import RunDirError
from trainscope.session.evaluate_run import evaluate_run


@pytest.mark.slow
def test_eval_reproduces_the_test_metrics_training_logged(train) -> None:
    assert train(*TINY).returncode == 0
    run_dir = train.run_dir()
    trained = json.loads((run_dir / "metrics.json").read_text())
    saved_config = (run_dir / ".hydra" / "config.yaml").read_text()

    # The run directory's name holds `=` and `,` (the overrides): passed as is, nothing else repeated.
    result = run_script("eval.py", [f"run={run_dir}"], train.output_root, train.data_dir)
    assert result.returncode == 0, result.stderr
    printed = dict(line.split() for line in result.stdout.splitlines() if line.startswith("test/"))
    assert float(printed["test/acc"]) == pytest.approx(trained["test"]["test/acc"], abs=1e-6)
    assert float(printed["test/loss"]) == pytest.approx(trained["test"]["test/loss"], rel=1e-5)

    evaluated = json.loads((run_dir / "metrics.json").read_text())
    assert evaluated["status"] == "completed"
    assert evaluated["test"] == pytest.approx(trained["test"], rel=1e-5)
    assert evaluated["final"]["test/acc"] == pytest.approx(trained["final"]["test/acc"])
    assert evaluated["evaluated_checkpoint"].endswith("best.pt")
    assert (run_dir / ".hydra" / "config.yaml").read_text() == saved_config
    assert (run_dir / "eval.log").is_file()
    assert list(train.output_root.glob("runs/*/*")) == [run_dir], "eval makes no new run directory"

    events = read_events(run_dir)
    test_points = events.Scalars("test/acc")
    assert [point.step for point in test_points] == [16, 16], "training's point and eval's, at the last step"
    assert test_points[-1].value == pytest.approx(trained["test"]["test/acc"])
    start_infos = [tag for tag in events.Tags()["tensors"] if tag == "_hparams_/session_start_info"]
    assert len(start_infos) == 1 and len(events.Tensors("_hparams_/session_start_info")) == 1
    # default logging: histograms only on the last epoch
    assert [event.step for event in events.Histograms("weights/net.1.weight")] == [16]


@pytest.mark.parametrize(
    ("args", "named"),
    [([], "run="), (["run=does/not/exist"], "run=does/not/exist is not a run directory")],
)
def test_eval_without_a_run_directory_is_one_line(train, args: list[str], named: str) -> None:
    result = run_script("eval.py", args, train.output_root, train.data_dir)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"status": "compl', "cannot be read (Unterminated string"),  # torn
        ("[1]", "holds a list, not a JSON object"),
        ('{"final": 3}', "has a `final` that is not an object"),
        ('{"global_step": "12"}', "has global_step '12', not a whole number"),
    ],
    ids=["torn", "list", "final", "global_step"],
)
def test_eval_refuses_a_metrics_json_it_cannot_trust_and_keeps_it(content: str, problem: str, tmp_path: Path) -> None:
    """The run's metrics.json is untrusted input that eval.py rewrites: a torn or foreign one is one line before
    anything is built (before: AttributeError, ValueError, TypeError, JSONDecodeError tracebacks)."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {"_target_": "trainscope.models.MLP"}}))
    (run_dir / "metrics.json").write_text(content)
    with pytest.raises(RunDirError, match="move it aside") as refused:
        evaluate_run(run_dir)
    assert problem in str(refused.value)
    assert (run_dir / "metrics.json").read_text() == content
