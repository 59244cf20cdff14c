"""`trainscope-export run=<dir> [merged=true]`: a run's weights as a plain state dict, for use outside trainscope.

The run directory is untrusted input: its config is only read (the LoRA sizes), its checkpoint loads with
`weights_only=True`, and no model is built. With `merged=true` a LoRA run's adapters are folded into the weights
(`trainscope.models.lora.merged_state_dict`): the file then loads into the model without adapters
(`model.load_state_dict`), which computes what the adapted model computed.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import torch

from trainscope.config.groups.finetune import FinetuneConfig
from trainscope.config.yaml_files import load_yaml
from trainscope.core.checkpoint_io import find_checkpoint, load_checkpoint
from trainscope.core.errors import ConfigError
from trainscope.core.run_dir import SAVED_CONFIG, atomic_write, check_run_dir
from trainscope.models.lora import merged_state_dict

log = logging.getLogger(__name__)

EXPORT_DIR = "export"
FINETUNE_STATE = "finetune"  # the checkpoint's state of `trainscope.callbacks.freezing` (callbacks.build.FINETUNE)


def export_run(run_dir: Path, merged: bool = False, checkpoint: str = "best", out: Path | None = None) -> Path:
    """Write the run's model state dict (adapters merged when `merged`) to `out` (default
    `<run>/export/model.pt`, or `merged.pt`); the path written."""
    cfg = load_yaml(check_run_dir(run_dir) / SAVED_CONFIG)
    checkpoint_path = find_checkpoint(run_dir, checkpoint)
    loaded = load_checkpoint(checkpoint_path)
    state = loaded["model"]
    if merged:
        lora = FinetuneConfig.from_config(cfg.get("finetune")).lora
        if lora is None:
            raise ConfigError(
                f"merged=true: {run_dir} trained without finetune.lora, so there are no adapters to merge; "
                "drop merged=true to export its weights as they are"
            )
        transposed = loaded.get("callbacks", {}).get(FINETUNE_STATE, {}).get("lora_transposed", [])
        state = merged_state_dict(state, lora, transposed)
    target = out or run_dir / EXPORT_DIR / ("merged.pt" if merged else "model.pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    serialized = io.BytesIO()
    torch.save(state, serialized)
    atomic_write(target, serialized.getvalue())
    log.info("exported %s (%d tensors) from %s", target, len(state), checkpoint_path)
    return target
