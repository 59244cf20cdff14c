"""Comparing runs: the runs table of `trainscope-runs`, seed aggregates, read from run directories alone.

Above the run (session and below: what writes a run directory) and below the sweeps, which print the same table
at their end: it reads what runs wrote (`trainscope.core.run_dir`, `.hydra/`, `metrics.csv`) and imports no torch.
"""
