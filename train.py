"""Train a model: `python train.py model=cnn data=mnist` (see docs/training.md)."""

from trainscope.cli.train import entrypoint

if __name__ == "__main__":
    entrypoint()
