"""Full fine-tuning vs a frozen backbone vs LoRA: optimizer steps per second and peak memory, for one model of
more than 10M parameters, in one run.

Each mode trains in a process of its own (so peak memory is that mode's alone) the same GPT (`model=gpt`, 6
layers, 384 wide: 10.8M parameters) on the same random token batches with AdamW, as trainscope sets it up:

- **full**: every parameter trains;
- **frozen**: `finetune.freeze=backbone` through `trainscope.callbacks.freezing.Freezing` (only the head, tied to
  the token embedding, trains);
- **lora**: `finetune.lora` on every block's `qkv` (r=8) through `trainscope.models.lora.add_lora`.

Reported per mode: trainable parameters, steps/s over the timed steps (after warm-up steps), and peak memory: on
CUDA `torch.cuda.max_memory_allocated` (tensors only), on the CPU the process's peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`: torch and Python included, so compare the differences between modes).

    python benchmarks/finetune.py                   # CPU
    python benchmarks/finetune.py --device cuda     # a GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MODES = ("full", "frozen", "lora")


def measure(mode: str, device: str, steps: int, warmup: int, batch: int, block: int) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from trainscope.callbacks.freezing import Freezing
    from trainscope.config.groups.finetune import FinetuneConfig, LoraConfig
    from trainscope.models import GPT
    from trainscope.models.lora import add_lora

    torch.manual_seed(0)
    model = GPT(vocab_size=512, block_size=block, n_layer=6, n_head=6, n_embd=384).to(device)
    if mode == "frozen":
        freezing = Freezing(FinetuneConfig.from_config({"freeze": "backbone"}), model)
        for group in freezing.groups:  # what the callback does at the start of the run
            for parameter in group:
                parameter.requires_grad_(False)
    elif mode == "lora":
        add_lora(model, LoraConfig(target_modules=("qkv",), r=8, alpha=16))
        model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)  # every parameter, as trainscope builds it
    tokens = torch.randint(0, 512, (steps + warmup, batch, block + 1), device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(steps + warmup):
        if step == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        inputs, targets = tokens[step, :, :-1], tokens[step, :, 1:]
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "steps_per_second": steps / seconds,
        "peak_memory_mib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, in a child process
    arguments = parser.parse_args()
    sizes = (arguments.device, arguments.steps, arguments.warmup, arguments.batch, arguments.block)
    if arguments.mode:
        print(json.dumps(measure(arguments.mode, *sizes)))
        return
    print(f"device {arguments.device}, batch {arguments.batch} x {arguments.block} tokens, {arguments.steps} steps")
    print("| mode | parameters | trainable | steps/s | peak memory (MiB) |\n| --- | --- | --- | --- | --- |")
    passed = [f"--{key}={value}" for key, value in vars(arguments).items() if key != "mode"]
    for mode in MODES:
        child = subprocess.run(
            [sys.executable, __file__, "--mode", mode, *passed], capture_output=True, text=True, check=True
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"| {mode} | {result['parameters']:,} | {result['trainable']:,} | {result['steps_per_second']:.2f} | "
            f"{result['peak_memory_mib']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
