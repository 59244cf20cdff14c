"""`python -m trainscope.sweep.worker_process <index> <dir>`: one worker process (`local_workers.LocalWorkers`)."""

import sys

from trainscope.sweep.local_workers import worker_process_main

if __name__ == "__main__":
    sys.exit(worker_process_main(sys.argv[1:]))
