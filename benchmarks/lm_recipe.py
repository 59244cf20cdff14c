"""nanoGPT's CPU recipe for Shakespeare, as a minimal hand-written loop over trainscope's own parts.

    python benchmarks/lm_recipe.py                    # 2000 steps, ~1.5 min on a quiet 2-core machine
    python benchmarks/lm_recipe.py --steps 200        # a quick look
    python benchmarks/lm_recipe.py --against-trainscope   # then `experiment=shakespeare_char_cpu` in this process

The recipe of nanoGPT's README ("I only have a macbook"): `model=gpt` with 4 layers, 4 heads, 128 wide, no
biases, dropout 0, block 64, batch 12, AdamW (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on matrices), grad
clip 1.0, 100 warmup steps then cosine to 1e-4 at step 2000; char tokens of the bundled tinyshakespeare split
90/10 as nanoGPT splits it. The loop is nanoGPT's, one screen long: forward, cross-entropy, backward, clip, step,
schedule. It is the floor a trainscope run of the same recipe is timed against (tokens/s in one process, same
model, same batches), and it checks that the parts reach nanoGPT's reported val loss of 1.88.

Prints tokens/s of the training steps (evaluation excluded), the wall time, and val loss every `--eval-every`
steps on 20 batches (nanoGPT's eval_iters) and at the end on the whole validation split. `--against-trainscope`
then trains the same recipe through trainscope's loop in the same process (`experiment=shakespeare_char_cpu` with
nanoGPT's learning rate, warmup, floor and weight decay, which the experiment replaces by tuned ones; default
monitoring on, one validation at the end) and prints the ratio of the two training tokens/s (each
without its evaluations; the same model, seed and batches: both draw `batch_at(step)`). Results go in
benchmarks/RESULTS.md with the machine's load; timing is never part of the tests.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from trainscope.data.text import BUNDLED_SHAKESPEARE, BlockBatches, TextData, build_text_data
from trainscope.engine.schedules import WarmupCosine
from trainscope.engine.weight_decay import parameter_groups
from trainscope.models import GPT

# nanoGPT's optimizer numbers (config/train_shakespeare_char.py); experiment=shakespeare_char_cpu has tuned ones.
NANOGPT_OPTIMIZER = {
    "optimizer.lr": 1e-3,
    "scheduler.warmup_steps": 100,
    "scheduler.min_lr": 1e-4,
    "optimizer.weight_decay": 0.1,
}


@torch.no_grad()
def mean_loss(model: nn.Module, batches: BlockBatches, limit: int | None = None) -> float:
    model.eval()
    total, count = 0.0, 0
    for index, (inputs, targets) in enumerate(batches):
        if limit is not None and index >= limit:
            break
        total += F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(), reduction="sum").item()
        count += targets.numel()
    model.train()
    return total / count


def recipe(steps: int, eval_every: int, seed: int) -> tuple[GPT, TextData, float, float]:
    """Train the recipe; (model, data, training seconds, wall seconds)."""
    wall_start = time.perf_counter()
    data = build_text_data(
        path=BUNDLED_SHAKESPEARE, tokenizer="char", block_size=64, batch_size=12, val_fraction=0.1,
        test_fraction=0.0, split_seed=0, cache_dir=Path(tempfile.gettempdir()) / "trainscope-bench-cache",
        device="cpu", seed=seed,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = GPT(vocab_size=data.vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=False)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, "matrices", NANOGPT_OPTIMIZER["optimizer.weight_decay"]),
        lr=NANOGPT_OPTIMIZER["optimizer.lr"],
        betas=(0.9, 0.99),
        fused=True,  # as the experiment
    )
    schedule = WarmupCosine(
        optimizer,
        total_steps=2000,
        warmup_steps=int(NANOGPT_OPTIMIZER["scheduler.warmup_steps"]),
        min_lr=NANOGPT_OPTIMIZER["scheduler.min_lr"],
    )
    training = 0.0
    for step in range(steps):
        if step % eval_every == 0:
            print(f"step {step}: val loss {mean_loss(model, data.val, limit=20):.4f}", flush=True)
        start = time.perf_counter()
        inputs, targets = data.train.batch_at(step)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        training += time.perf_counter() - start
    return model, data, training, time.perf_counter() - wall_start


def trainscope_tokens_per_second(steps: int, seed: int) -> tuple[float, float]:
    """(training tokens/s, val loss) of `python train.py experiment=shakespeare_char_cpu` for `steps` steps."""
    from throughput import compose_overrides  # benchmarks/throughput.py: the config train.py composes

    from trainscope.session.run import train

    overrides = [
        "experiment=shakespeare_char_cpu",
        *(f"{key}={value}" for key, value in NANOGPT_OPTIMIZER.items()),  # the loop above trains nanoGPT's four
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={steps}",
        f"trainer.seed={seed}",
        f"data.cache_dir={Path(tempfile.gettempdir()) / 'trainscope-bench-cache'}",
        "+scheduler.total_steps=2000",  # the recipe's schedule, as the raw loop's, however many steps run
        "logging.progress_bar=false",
    ]
    result = train(compose_overrides(overrides), Path(tempfile.mkdtemp(prefix="lm-recipe-")))
    return result.metrics["train/tokens_per_sec"], result.metrics["val/loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--against-trainscope", action="store_true", help="then time trainscope's loop too")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    model, data, training, wall = recipe(arguments.steps, arguments.eval_every, arguments.seed)
    val_20 = mean_loss(model, data.val, limit=20)
    val_all = mean_loss(model, data.val)
    tokens = arguments.steps * 12 * 64
    print(
        f"step {arguments.steps}: val loss {val_20:.4f} (20 batches), "
        f"{val_all:.4f} (whole split, perplexity {math.exp(val_all):.2f})"
    )
    print(f"training {tokens / training:,.0f} tokens/s; {wall:.1f} s end to end; load average {os.getloadavg()[0]:.1f}")
    if arguments.against_trainscope:
        ours, val_loss = trainscope_tokens_per_second(arguments.steps, arguments.seed)
        print(
            f"trainscope: {ours:,.0f} tokens/s, val loss {val_loss:.4f} (20 blocks); hand-written / trainscope "
            f"tokens/s ratio {tokens / training / ours:.3f}; load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
