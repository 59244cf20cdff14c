"""Sample text from a trained language model: `python generate.py run=<run_dir> prompt="ROMEO:"` (see
docs/language-models.md)."""

from trainscope.cli.generate import entrypoint

if __name__ == "__main__":
    entrypoint()
