"""Callbacks: everything that watches the loop (checkpoints, early stopping, health checks, signals, TensorBoard
loggers, Optuna pruning), all built by `trainscope.callbacks.build.build_callbacks`."""
