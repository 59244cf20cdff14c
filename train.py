"""Train a model: `python train.py model=cnn data=mnist` (see docs/training.md)."""

from trainscope.cli.train import main

if __name__ == "__main__":
    main()
