"""Whole-batch augmentation on the device: random crop with padding and horizontal flip.

Random draws come from a generator on the batch's device seeded by (seed, epoch, batch index), so `iter_from(k)`
and an uninterrupted epoch produce the same augmented batch k, and both loader paths agree. Drawing on the device
keeps a step free of host-to-device copies: on CUDA each one would wait for the queued work.
"""

from __future__ import annotations

import torch

from trainscope.config.groups.data import AugmentConfig  # `data.augment`, typed
from trainscope.data.seeding import AUGMENT_STREAM, device_generator

__all__ = ["AugmentConfig", "augment_batch"]


def augment_batch(
    inputs: torch.Tensor,
    config: AugmentConfig,
    pad_value: torch.Tensor,
    seed: int,
    epoch: int,
    batch_index: int,
) -> torch.Tensor:
    """Augment a normalized batch [B, C, H, W]; `pad_value` [C] is what a black pixel normalizes to.

    Padding with the normalized value of black equals torchvision's RandomCrop(padding) on raw images.
    """
    if not config.enabled:
        return inputs
    batch_size, channels, height, width = inputs.shape
    device = inputs.device
    generator = device_generator(device, AUGMENT_STREAM, seed, epoch, batch_index)
    if config.crop_padding > 0:
        pad = config.crop_padding
        padded = pad_value.to(device=device, dtype=inputs.dtype).view(1, channels, 1, 1)  # SplitSettings keeps it there
        padded = padded.expand(batch_size, channels, height + 2 * pad, width + 2 * pad).clone()
        padded[:, :, pad : pad + height, pad : pad + width] = inputs
        offsets = torch.randint(0, 2 * pad + 1, (2, batch_size), generator=generator, device=device)
        # Two gathers (rows, then columns) crop every sample at its own offset in one pass.
        rows = (offsets[0, :, None] + torch.arange(height, device=device))[:, None, :, None]
        cols = (offsets[1, :, None] + torch.arange(width, device=device))[:, None, None, :]
        padded = padded.gather(2, rows.expand(batch_size, channels, height, width + 2 * pad))
        inputs = padded.gather(3, cols.expand(batch_size, channels, height, width))
    if config.horizontal_flip:
        flip = torch.rand(batch_size, generator=generator, device=device) < 0.5
        inputs = torch.where(flip[:, None, None, None], inputs.flip(-1), inputs)
    return inputs
