"""A language model through the CLI: `eval.py` and `generate.py` on its run, `resume=` after SIGKILL ending
at the same val loss and sample text as the uninterrupted run, and a fine-tune on another text from a run's
weights (`model.init_from`) and vocabulary (`data.tokenizer=<run>/tokenizer`)."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest

from tests.helpers.cli import resume_cli, run_script, single_run_dir, start_training, wait_for_checkpoint
from tests.helpers.events import read_events
from tests.helpers.lm_runs import TINY_LM
from trainscope.data.text import BUNDLED_SHAKESPEARE

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


# The classic recipe, small: a GPT trained on the first half of Shakespeare is fine-tuned on the second half.
SMALL_LM = ["task=language_modeling", "model=gpt", "data=text", "model.n_layer=2", "model.n_head=2"]
SMALL_LM += ["model.n_embd=64", "data.block_size=32", "data.batch_size=16", "trainer.limit_val_batches=8"]
SMALL_LM += ["optimizer=adamw", "optimizer.lr=3e-3", "trainer.test=false", "logging=minimal", "trainer.seed=0"]


def final_val_loss(output_root: Path) -> float:
    return json.loads((single_run_dir(output_root) / "metrics.json").read_text())["final"]["val/loss"]


@pytest.mark.slow
def test_a_fine_tune_from_a_pretrained_run_reaches_a_lower_val_loss_in_200_steps_than_from_scratch(
    tmp_path: Path,
) -> None:
    text = BUNDLED_SHAKESPEARE.read_text()
    first, second = text[: len(text) // 2], text[len(text) // 2 :]
    (tmp_path / "first.txt").write_text(first)
    known = set(first)
    (tmp_path / "second.txt").write_text("".join(c for c in second if c in known))  # only ids the run has

    def train(name: str, *overrides: str) -> float:
        result = run_script("train.py", [*SMALL_LM, *overrides], tmp_path / name, tmp_path / "data")
        assert result.returncode == 0, result.stderr[-3000:]
        return final_val_loss(tmp_path / name)

    train(
        "pretrained", f"data.path={tmp_path / 'first.txt'}", "trainer.max_steps=400", "trainer.val_check_interval=400"
    )
    pretrained = single_run_dir(tmp_path / "pretrained")  # its name holds '=' and ',': quoted as Hydra values
    on_second = [f"data.path={tmp_path / 'second.txt'}", f"data.tokenizer='{pretrained / 'tokenizer'}'"]
    on_second += ["trainer.max_steps=200", "trainer.val_check_interval=200"]
    scratch = train("scratch", *on_second)
    fine_tuned = train("fine_tuned", *on_second, f"model.init_from='{pretrained}'")
    assert fine_tuned < scratch - 0.1, f"val loss after 200 steps: fine-tuned {fine_tuned:.3f}, scratch {scratch:.3f}"
