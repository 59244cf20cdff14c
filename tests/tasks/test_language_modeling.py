"""`task=language_modeling`: next-token loss, perplexity and tokens/s, in a real run on the shipped Shakespeare."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.cli import error_line, run_script
from tests.helpers.events import read_events
from tests.helpers.lm_runs import TINY_LM, compose_lm
from trainscope.core.errors import ConfigError
from trainscope.data.tokenizer import load_tokenizer
from trainscope.session.run import train
from trainscope.tasks import LanguageModeling


def test_loss_ignores_padding_and_perplexity_is_its_exponential() -> None:
    task = LanguageModeling(ignore_index=-100)
    logits = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(7, (2, 5), generator=torch.Generator().manual_seed(1))
    targets[1, 3:] = -100
    counted = targets != -100
    expected = F.cross_entropy(logits[counted], targets[counted])
    assert task.loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)
    evaluator = task.evaluator(torch.device("cpu"))
    evaluator.update(logits, targets)
    result = evaluator.result(lambda sums: sums)
    assert result["loss"] == pytest.approx(expected.item(), rel=1e-6)
    assert result["ppl"] == pytest.approx(math.exp(expected.item()), rel=1e-6)
    sums = [float(value) for value in task.train_statistics(logits, targets)]
    assert sums[1] == 8  # tokens counted, padding not
    metrics = task.train_metrics(sums, 2, seconds=2.0)
    assert metrics["tokens_per_sec"] == 4 and metrics["ppl"] == pytest.approx(math.exp(expected.item()), rel=1e-6)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run, reused by the asserts below."""
    root = tmp_path_factory.mktemp("lm")
    run_dir = root / "run"
    run_dir.mkdir()
    train(
        compose_lm(
            root / "data",
            "trainer.max_steps=20",
            "trainer.val_check_interval=10",
            "logging.samples.prompts=[ROMEO:]",
            "logging.samples.max_new_tokens=30",
        ),
        run_dir,
    )
    return run_dir


def test_a_language_model_trains_below_the_uniform_guess_and_keeps_its_tokenizer(lm_run: Path) -> None:
    summary = json.loads((lm_run / "metrics.json").read_text())
    final = summary["final"]
    assert (
        summary["status"] == "completed"
        and summary["global_step"] == 20
        and summary["monitor"] == {"metric": "val/loss", "mode": "min"}
    )
    assert final["val/loss"] < math.log(65), "below a uniform guess over 65 characters"
    assert final["val/ppl"] == pytest.approx(math.exp(final["val/loss"]), rel=1e-6)
    assert final["train/tokens_per_sec"] > 0 and final["val/loss_best"] == final["val/loss"]
    assert load_tokenizer(lm_run / "tokenizer").decode([0, 1]) == "\n "  # the run's own char vocabulary


def test_each_validation_writes_generated_text_into_the_text_tab(lm_run: Path) -> None:
    events = read_events(lm_run)
    samples = events.Tensors("samples/0/text_summary")
    assert [point.step for point in samples] == [10, 20]  # after each validation period
    text = samples[-1].tensor_proto.string_val[0].decode()
    assert text.startswith("prompt 'ROMEO:':") and "```\nROMEO:" in text
    body = text.split("```\n")[1].removesuffix("\n```")
    assert len(body) == len("ROMEO:") + 30, "30 new characters"


def test_text_data_with_an_image_task_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(Exception) as raised:  # Hydra's wrapper; the CLI prints its cause, one line
        train(compose_lm(tmp_path, "task=classification"), tmp_path / "run")
    cause = raised.value if isinstance(raised.value, ConfigError) else raised.value.__cause__
    assert isinstance(cause, ConfigError)
    assert str(cause).startswith("task=classification needs integer class targets; data=shakespeare_char holds text")
    assert str(cause).endswith("(use task=language_modeling)")


def test_a_tiny_gpt2_config_saved_locally_trains_and_samples(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")  # the lm extra (in .[test])
    folder = tmp_path / "tiny-gpt2"
    transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, n_positions=64, vocab_size=100).save_pretrained(folder)
    cfg = compose_lm(
        tmp_path / "data",
        "model=hf",
        f"model.name={folder}",
        "trainer.max_steps=10",
        "trainer.val_check_interval=10",
        "logging.samples.prompts=[ROMEO:]",
        "logging.samples.max_new_tokens=10",
        gpt_sizes=False,
    )
    train(cfg, tmp_path / "run")
    final = json.loads((tmp_path / "run" / "metrics.json").read_text())["final"]
    assert final["val/loss"] < math.log(65), "sized to the 65 characters, and learning"
    sample = read_events(tmp_path / "run").Tensors("samples/0/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "```\nROMEO:" in sample


LANGUAGE_MODEL_MISTAKES = [
    (["model.vocab_size=50"], "the tokenizer (char) has 65 tokens but the model only 50 (model.vocab_size)"),
    (["model.block_size=8"], "data.block_size=16 is longer than the model's context of 8 tokens (model.block_size)"),
    (["data=text", "data.path={empty}"], "data.path={empty} is empty; it must hold text"),
    (["data=text", "data.path={short}"], "fewer than one block of data.block_size=16 + 1"),
    (["data.tokenizer={missing}"], "data.tokenizer={missing} does not exist"),
    (["data=text", "data.path={binary}"], "is a binary file (it holds NUL bytes), not text"),
]


@pytest.mark.slow
def test_language_model_mistakes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    """The bad-input rows of text data, through the CLI (one process each: ~3 s apiece on a quiet machine)."""
    files = {"empty": tmp_path / "empty.txt", "short": tmp_path / "short.txt", "binary": tmp_path / "binary.txt"}
    files["empty"].write_text("")
    files["short"].write_text("To be, or not to be\n")
    files["binary"].write_bytes(b"\x00\x01\x02" * 100)
    names = {name: str(path) for name, path in files.items()} | {"missing": str(tmp_path / "no-tokenizer")}
    for overrides, message in LANGUAGE_MODEL_MISTAKES:
        args = [*TINY_LM, f"data.cache_dir={tmp_path / 'cache'}", *(item.format(**names) for item in overrides)]
        result = run_script("train.py", args, tmp_path / "out", tmp_path / "data")
        assert result.returncode == 2, (overrides, result.stderr[-2000:])
        assert message.format(**names) in error_line(result), overrides
        assert "Traceback" not in result.stderr
    assert not list((tmp_path / "out").glob("runs/*/*")), "no run directory is left behind"
