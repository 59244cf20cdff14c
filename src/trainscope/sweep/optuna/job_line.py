"""Hydra's `[HYDRA] #N : <overrides>` line of a trial shows the trial's own overrides, not how it is addressed.

Each trial's job gets its address (storage URL, study, trial id) as `++hydra.job.env_set.TRAINSCOPE_TRIAL_*`
overrides (`trainscope.trial.channel`). Hydra's launcher prints every override but plain `hydra.*` ones, so
those would fill ~500 characters of each trial's line and print a storage URL's password; they are taken out
of that line while the trial's job starts. The job itself still gets them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from trainscope.adapters.hydra_private import basic_launcher

CHANNEL_PREFIX = "++hydra.job.env_set."
"""How `SweepSession.trial_overrides` passes a trial's address to its job."""


class _WithoutOverrides(logging.Filter):
    def __init__(self, hidden: Sequence[str]) -> None:
        super().__init__()
        self.hidden = hidden

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            for override in self.hidden:
                record.msg = record.msg.replace(f" {override}", "").replace(override, "")
        return True


@contextlib.contextmanager
def job_line_without_channel(overrides: Sequence[str]) -> Iterator[None]:
    """While a trial's job starts, Hydra's launcher logs its overrides without the `CHANNEL_PREFIX` ones."""
    hidden = [override for override in overrides if override.startswith(CHANNEL_PREFIX)]
    logger = logging.getLogger(basic_launcher().__module__)
    without = _WithoutOverrides(hidden)
    logger.addFilter(without)
    try:
        yield
    finally:
        logger.removeFilter(without)
