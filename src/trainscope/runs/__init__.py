"""Comparing runs: `trainscope-runs`, the runs table, seed aggregates and the study report.

A top-level package beside `cli/` (the two are independent entrypoints): it reads what runs wrote
(`trainscope.core.run_dir`, `.hydra/`, `metrics.csv`) and, for a sweep's report, what the sweep recorded in its
study (`trainscope.sweep`); the sweepers (`hydra_plugins`) call it at their end. The table imports no torch.
"""
