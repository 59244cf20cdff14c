"""Everything about running one training run in several processes (torchrun, `trainer.devices=N`).

- `environment.py`: whether this process is a torchrun worker (no torch import: the CLI asks before torch loads);
- `process_group.py`: the process group, metric all-reduce, the stop agreement, DDP wrapping;
- `torchrun_job.py`: the ranks of one job agree on rank 0's run directory (and find it again after a restart);
- `launch.py`: `trainer.devices=N` starts N processes through torch's elastic agent.

It sits below every package that uses it (engine, session, cli) in the layer contract; importing this package
does not import torch.
"""
