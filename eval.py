"""Test a finished run: `python eval.py run=<run_dir>` (see docs/run-directory.md, "Evaluation")."""

from trainscope.cli.eval import entrypoint

if __name__ == "__main__":
    entrypoint()
