"""Test a finished run: `python eval.py run=<run_dir>` (see README.md, "Evaluation")."""

from trainscope.cli.eval import main

if __name__ == "__main__":
    main()
