"""`python -m trainscope.sweep.worker_process <index> <dir>`: one worker process of a sweep (`workers.LocalWorkers`)."""

import sys

from trainscope.sweep.workers import worker_process_main

if __name__ == "__main__":
    sys.exit(worker_process_main(sys.argv[1:]))
