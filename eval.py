"""Test a finished run: `python eval.py run=<run_dir>` (see docs/run-directory.md, "Evaluation")."""

from trainscope.cli.eval import main

if __name__ == "__main__":
    main()
