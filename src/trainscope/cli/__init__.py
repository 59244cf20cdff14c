"""Command-line entrypoints (train.py, eval.py): argument rewriting before Hydra, one-line error reporting."""
