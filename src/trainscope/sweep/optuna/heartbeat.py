"""A running trial's heartbeat in a database storage, recorded by the process that launched its job.

While the job runs, this thread records a heartbeat every `hydra.sweeper.heartbeat_interval` seconds; when the
sweep process dies the beats stop, the trial goes stale after the grace period, and another process fails it
and retries it once (`study.fail_abandoned_trials`). A journal file records no heartbeats: there the trial's
owner process is checked instead.
"""

from __future__ import annotations

import threading

from optuna.storages import BaseStorage

from trainscope.adapters.optuna_private import is_heartbeat_enabled
from trainscope.core.errors import first_line
from trainscope.sweep.optuna.messages import say


class Heartbeat:
    """Keeps an RDB trial alive while its job runs; a dead sweep's trials then go stale and are retried."""

    def __init__(self, storage: BaseStorage, trial_key: int) -> None:
        self.storage, self.trial_key = storage, trial_key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"optuna-heartbeat-{trial_key}", daemon=True)

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval()  # type: ignore[attr-defined]
        while True:
            try:
                self.storage.record_heartbeat(self.trial_key)  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 - a missed beat must not kill the trial
                say(f"heartbeat of trial {self.trial_key} not recorded: {first_line(error)}")
            if self._stop.wait(interval):
                return

    def __enter__(self) -> Heartbeat:
        if is_heartbeat_enabled(self.storage):
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
