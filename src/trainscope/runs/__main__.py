"""`python -m trainscope.runs`: the same as `trainscope-runs`."""

from trainscope.runs.command import main

main()
