"""`python -m trainscope.sweep.optuna.workers.process <index> <dir>`: one worker process (`local.LocalWorkers`)."""

import sys

from trainscope.sweep.optuna.workers.local import worker_process_main

if __name__ == "__main__":
    sys.exit(worker_process_main(sys.argv[1:]))
