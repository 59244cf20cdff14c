"""Data-parallel training on PyTorch's own distributed engine: the process group and everything ranks agree on.

`torchrun` (or `trainer.devices=N`, which calls the same elastic agent) starts one process per device with
`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR` and `MASTER_PORT` in its environment. `start()` joins the
process group they describe; the rest of trainscope asks `process_group()` who it is and calls the few
collectives below. A process started without torchrun gets `SINGLE_PROCESS`, whose collectives do nothing, so the
loop has one code path. `torchrun --nproc_per_node=1` does join a group of one and trains through DDP, which is
how `benchmarks/ddp.py` measures what DDP itself costs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from trainscope.distributed.environment import in_torchrun_job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in the job, and the collectives the loop needs (no-ops for a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    control: Any = None  # a gloo group: small CPU messages (stop decisions, run dir) never touch the GPU stream

    @property
    def enabled(self) -> bool:
        """Joined a process group: even one torchrun process trains through DDP, exactly as N would."""
        return self.control is not None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the run directory."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """`tensor` summed over all ranks, in place. On CUDA it is queued on the stream: the host does not wait."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, value: Any, source: int = 0) -> Any:
        """`value` as rank `source` has it (pickled through the CPU control group)."""
        if not self.enabled:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=source, group=self.control)
        return holder[0]

    def agree_on_stop(self, code: int, reason: str) -> tuple[int, str]:
        """The stop every rank takes at this step: the highest `code` any rank requested (0 = keep going).

        Ties go to the lowest rank, so a decision taken on rank 0 (pruning, early stopping) is the one all follow.
        One integer all-reduce on the CPU control group per call; the reason travels only when a rank stops.
        """
        if not self.enabled:
            return code, reason
        # code * world_size + (world_size - 1 - rank): the maximum names both the strongest code and its lowest rank.
        packed = torch.tensor([code * self.world_size + self.world_size - 1 - self.rank], dtype=torch.int64)
        dist.all_reduce(packed, op=dist.ReduceOp.MAX, group=self.control)
        strongest, source = divmod(int(packed), self.world_size)
        if strongest == 0:
            return 0, ""
        return strongest, self.broadcast_object(reason, source=self.world_size - 1 - source)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier(group=self.control)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """`model` in DistributedDataParallel (which broadcasts rank 0's weights now and averages gradients in
        `backward()`), or the model itself for a single process."""
        if not self.enabled:
            return model
        device_ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


SINGLE_PROCESS = ProcessGroup()
_current = SINGLE_PROCESS


def process_group() -> ProcessGroup:
    """The group `start()` joined, or `SINGLE_PROCESS`."""
    return _current


def start() -> ProcessGroup:
    """Join the process group torchrun described in the environment; `SINGLE_PROCESS` without torchrun.

    NCCL carries CUDA tensors and gloo CPU ones (`cpu:gloo,cuda:nccl`), so `trainer.device=cpu` also works on a
    GPU machine; without CUDA everything goes through gloo.
    """
    global _current
    if _current.enabled or not in_torchrun_job():
        return _current
    local_rank = int(os.environ["LOCAL_RANK"])
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # before NCCL starts: one device per process
        backend = "cpu:gloo,cuda:nccl"
    # torchrun's agent keeps one TCPStore for the whole job, across `--max-restarts` restarts. Keys the first
    # attempt's processes left in it (their gloo addresses) would make a restarted group connect to dead peers,
    # so each attempt joins under its own prefix.
    store, rank, world_size = next(dist.rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(
        backend, store=dist.PrefixStore(f"trainscope/attempt_{attempt}", store), rank=rank, world_size=world_size
    )
    control = dist.new_group(backend="gloo") if backend != "gloo" else dist.group.WORLD
    _current = ProcessGroup(dist.get_rank(), dist.get_world_size(), local_rank, control)
    return _current


def stop() -> None:
    """Leave the process group (a clean exit; torchrun reports a hang otherwise)."""
    global _current
    group, _current = _current, SINGLE_PROCESS
    if not group.enabled or not dist.is_initialized():
        return
    try:
        # Leave together: a rank closing its gloo connections while a peer is still tearing down can make gloo
        # abort that peer at exit. Bounded, so a rank whose peers crashed is not kept waiting.
        dist.monitored_barrier(group=group.control, timeout=timedelta(seconds=60))
    except RuntimeError as error:
        log.debug("leaving the process group without the others: %s", error)
    dist.destroy_process_group()


def device_for(requested: str, group: ProcessGroup) -> str:
    """`auto`/`cuda` in a process group mean this process's own GPU, `cuda:<local_rank>`: one process per device."""
    if group.enabled and requested in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{group.local_rank}"
    return requested
