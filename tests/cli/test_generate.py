"""generate() and `trainscope-generate run=<dir> prompt=...`: sampling text from a trained language model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.text import make_language_model_run
from trainscope.core.errors import ConfigError
from trainscope.models import GPT
from trainscope.models.generation import Sampling, generate
from trainscope.session.generate_run import generate_from_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_language_model_run(tmp_path_factory.mktemp("runs") / "shakespeare")


def generate_cli(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, str(REPO / "generate.py"), *arguments],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16)


# ----------------------------------------------------------------------------------------------------------
# generate()


def test_generate_appends_max_new_tokens_and_is_fixed_by_its_seed() -> None:
    model, prompt = tiny_model(), torch.tensor([[1, 2, 3], [4, 5, 6]])
    first = generate(model, prompt, Sampling(max_new_tokens=20, seed=7))
    assert first.shape == (2, 23) and torch.equal(first[:, :3], prompt)
    assert torch.equal(generate(model, prompt, Sampling(max_new_tokens=20, seed=7)), first)
    assert not torch.equal(generate(model, prompt, Sampling(max_new_tokens=20, seed=8)), first)


def test_sampling_leaves_the_global_random_state_and_the_training_mode_alone() -> None:
    model = tiny_model().train()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate(model, torch.tensor([[1]]), Sampling(max_new_tokens=5))
    assert torch.equal(torch.rand(3), expected)
    assert model.training


def test_temperature_zero_and_top_k_one_both_take_the_most_likely_token() -> None:
    model, prompt = tiny_model(), torch.tensor([[3, 1, 4]])
    greedy = generate(model, prompt, Sampling(max_new_tokens=12, temperature=0.0))
    tokens = prompt
    for _ in range(12):
        tokens = torch.cat((tokens, model.eval()(tokens[:, -8:])[:, -1].argmax(-1, keepdim=True)), dim=1)
    assert torch.equal(greedy, tokens)
    assert torch.equal(generate(model, prompt, Sampling(max_new_tokens=12, top_k=1, seed=5)), greedy)


def test_the_context_is_cropped_to_the_block_size() -> None:
    """A continuation may grow past the model's 8 positions: only the last 8 tokens are fed back."""
    out = generate(tiny_model(), torch.randint(0, 13, (1, 10)), Sampling(max_new_tokens=10))
    assert out.shape == (1, 20)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_new_tokens": 0}, r"max_new_tokens must be a positive integer, got 0"),
        ({"temperature": -1}, r"temperature must be a number >= 0"),
        ({"top_k": 0}, r"top_k must be null or a positive integer, got 0"),
    ],
)
def test_bad_sampling_settings_are_one_line(values: dict[str, object], message: str) -> None:
    settings = {"max_new_tokens": 5, "temperature": 1.0, "top_k": None, "seed": 0, **values}
    with pytest.raises(ConfigError, match=message):
        Sampling.checked(**settings)


# ----------------------------------------------------------------------------------------------------------
# trainscope-generate


@pytest.mark.slow
def test_a_run_continues_the_prompt_with_its_own_tokenizer_and_nothing_is_written(lm_run: Path) -> None:
    before = {path: path.stat().st_mtime_ns for path in lm_run.rglob("*")}
    sampling = Sampling(max_new_tokens=60, temperature=0.8, top_k=20, seed=1337)
    samples = generate_from_run(lm_run, "ROMEO:", sampling, num_samples=2)
    assert len(samples) == 2 and samples[0] != samples[1]
    assert all(sample.startswith("ROMEO:") and len(sample) == 66 for sample in samples)
    assert generate_from_run(lm_run, "ROMEO:", sampling, num_samples=2) == samples
    assert {path: path.stat().st_mtime_ns for path in lm_run.rglob("*")} == before


@pytest.mark.slow
def test_the_command_prints_the_samples_and_takes_the_prompt_literally(lm_run: Path, tmp_path: Path) -> None:
    prompt = "ROMEO: 'tis $3, or"  # a lone quote, a comma and a $: Hydra's grammar would read them
    result = generate_cli(f"run={lm_run}", f"prompt={prompt}", "max_new_tokens=30", "seed=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(prompt) and len(result.stdout) == len(prompt) + 31
    expected = generate_from_run(lm_run, prompt, Sampling(30, 0.8, 200, 3))
    assert result.stdout == expected[0] + "\n"
    two = generate_cli(f"run={lm_run}", "prompt=KING:", "num_samples=2", "max_new_tokens=10", cwd=tmp_path)
    assert two.returncode == 0 and two.stdout.count("-" * 40) == 1
    assert not list(tmp_path.iterdir())  # nothing written where it ran either


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["prompt=ROMEO: {x}"], r"error: prompt='ROMEO: \{x\}': character '\{' is not in this char tokenizer's"),
        (["max_new_tokens=0"], r"error: max_new_tokens must be a positive integer, got 0"),
        (["num_samples=-1"], r"error: num_samples must be a positive integer, got -1"),
        (["prompt="], r"error: prompt='' holds no token"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    lm_run: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = generate_cli(f"run={lm_run}", *arguments, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.match(message, result.stderr), result.stderr


@pytest.mark.slow
def test_a_run_without_a_tokenizer_or_not_a_run_is_one_line(lm_run: Path, tmp_path: Path) -> None:
    result = generate_cli(f"run={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2 and "is not a run directory" in result.stderr
    missing = generate_cli(cwd=tmp_path)
    assert missing.returncode == 2 and "error: pass the run to sample from: trainscope-generate run=" in missing.stderr
    image_run = tmp_path / "image-run"
    (image_run / ".hydra").mkdir(parents=True)
    (image_run / ".hydra" / "config.yaml").write_text((lm_run / ".hydra" / "config.yaml").read_text())
    result = generate_cli(f"run={image_run}", cwd=tmp_path)
    assert result.returncode == 2 and "this run saved no tokenizer" in result.stderr


@pytest.mark.slow
def test_a_run_whose_config_names_an_untrusted_target_builds_nothing(lm_run: Path, tmp_path: Path) -> None:
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    for part in (".hydra", "tokenizer", "checkpoints"):
        subprocess.run(["cp", "-r", str(lm_run / part), str(crafted / part)], check=True)
    config = crafted / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("_target_: trainscope.models.GPT", "_target_: torch.load"))
    result = generate_cli(f"run={crafted}", cwd=tmp_path)
    assert result.returncode == 2
    assert "model._target_=torch.load is not in trainscope's models" in result.stderr


def test_help_does_not_import_torch(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "generate.py"), "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and "prompt" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()}
    assert "hydra" in imported and "torch" not in imported


@pytest.mark.slow
def test_a_corrupt_checkpoint_or_a_tampered_vocabulary_is_one_line(lm_run: Path, tmp_path: Path) -> None:
    def copy(name: str) -> Path:
        run = tmp_path / name
        subprocess.run(["cp", "-r", str(lm_run), str(run)], check=True)
        return run

    torn = copy("torn")
    last = torn / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    result = generate_cli(f"run={torn}", cwd=tmp_path)
    assert result.returncode == 2 and re.match(r"error: checkpoint .*last.pt is corrupt or unreadable", result.stderr)
    tampered = copy("tampered")
    (tampered / "tokenizer" / "char_vocabulary.json").write_text('{"characters": "abc"}')
    result = generate_cli(f"run={tampered}", "prompt=abc", cwd=tmp_path)
    assert result.returncode == 2 and "does not fit the model of" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
