"""Seeds derived from (seed, epoch[, batch index]), so a resumed run redraws exactly the same batches."""

from __future__ import annotations

import hashlib
import struct

import torch

# Distinct streams, so the shuffle of epoch e never shares random numbers with an augmentation draw.
SHUFFLE_STREAM = 0
AUGMENT_STREAM = 1
TEXT_WINDOW_STREAM = 2  # data=text: where training windows start, and the order evaluation reads blocks in


def derive_seed(*parts: int) -> int:
    """Mix integers into one 63-bit seed; stable across processes and Python versions (unlike hash())."""
    digest = hashlib.blake2b(struct.pack(f"<{len(parts)}q", *parts), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def cpu_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from `parts`: CPU draws are identical on every device and machine."""
    return device_generator(torch.device("cpu"), *parts)


def device_generator(device: torch.device, *parts: int) -> torch.Generator:
    """A generator on `device` seeded from `parts`, for draws made every step: they stay on the device, with no
    host-to-device copy (a wait on CUDA) per batch. Seeding touches no device memory, so it never waits either. The
    same parts give the same draws on one kind of device; a CPU and a GPU draw differently."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle order of one epoch (CPU int64); both loader paths use it, so their batches match."""
    return torch.randperm(num_samples, generator=cpu_generator(SHUFFLE_STREAM, seed, epoch))
