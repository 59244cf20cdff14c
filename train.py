"""Train a model: `python train.py model=cnn data=mnist` (see README.md)."""

from trainscope.cli.train import main

if __name__ == "__main__":
    main()
