"""A language model through the CLI: `eval.py` and `generate.py` on its run, and `resume=` after SIGKILL ending
at the same val loss and sample text as the uninterrupted run."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest

from tests.helpers.cli import resume_cli, run_script, single_run_dir, start_training, wait_for_checkpoint
from tests.helpers.events import read_events
from tests.helpers.lm_runs import TINY_LM

RUN = [
    *TINY_LM,
    "trainer.max_steps=60",
    "trainer.val_check_interval=10",
    "data.test_fraction=0.05",
    "logging.samples.prompts=[ROMEO:]",
    "logging.samples.max_new_tokens=20",
]


def last_sample(run_dir: Path) -> str:
    return read_events(run_dir).Tensors("samples/0/text_summary")[-1].tensor_proto.string_val[0].decode()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lm_cli")
    result = run_script("train.py", RUN, root / "out", root / "data")
    assert result.returncode == 0, result.stderr[-3000:]
    return single_run_dir(root / "out"), root / "data"


@pytest.mark.slow
def test_eval_prints_test_loss_and_perplexity_and_generate_samples(uninterrupted: tuple[Path, Path]) -> None:
    run_dir, data_dir = uninterrupted
    summary = json.loads((run_dir / "metrics.json").read_text())
    evaluated = run_script("eval.py", [f"run={run_dir}"], run_dir.parent, data_dir)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    printed = dict(line.split() for line in evaluated.stdout.splitlines() if line.startswith("test/"))
    assert float(printed["test/loss"]) == pytest.approx(summary["test"]["test/loss"], abs=1e-4)
    assert float(printed["test/ppl"]) == pytest.approx(math.exp(float(printed["test/loss"])), rel=1e-3)
    generated = run_script(
        "generate.py", [f"run={run_dir}", "prompt=ROMEO:", "max_new_tokens=25"], run_dir.parent, data_dir
    )
    assert generated.returncode == 0, generated.stderr[-2000:]
    assert generated.stdout.startswith("ROMEO:") and len(generated.stdout.rstrip("\n")) >= len("ROMEO:") + 20


@pytest.mark.slow
def test_resume_after_sigkill_ends_at_the_same_val_loss_and_sample_text(
    uninterrupted: tuple[Path, Path], tmp_path: Path
) -> None:
    reference, data_dir = uninterrupted
    process = start_training(RUN, tmp_path / "out", data_dir)
    run_dir = wait_for_checkpoint(tmp_path / "out", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "killed mid-run, not finished"
    resumed = resume_cli(run_dir, data_dir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = json.loads((reference / "metrics.json").read_text())
    got = json.loads((run_dir / "metrics.json").read_text())
    assert got["global_step"] == expected["global_step"] == 60
    assert got["final"]["val/loss"] == pytest.approx(expected["final"]["val/loss"], abs=1e-6)
    assert last_sample(run_dir) == last_sample(reference)
