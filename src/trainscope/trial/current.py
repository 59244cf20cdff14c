"""`current_trial()`: the Optuna trial this job runs as, read from the channel's environment variables."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from trainscope.trial.channel import TrialAddress

if TYPE_CHECKING:
    from trainscope.trial.handle import Trial

_opened: tuple[TrialAddress, Trial] | None = None


def current_trial() -> Trial | None:
    """The Optuna trial this job runs as, or None outside an Optuna sweep.

    Opened once per trial (the storage and the pruner are built on the first call), so calling it every
    epoch costs nothing; optuna is imported only here, only inside a sweep.
    """
    global _opened
    address = TrialAddress.from_env(os.environ)
    if address is None:
        return None
    if _opened is None or _opened[0] != address:
        from trainscope.trial.handle import open_trial

        _opened = (address, open_trial(address))
    return _opened[1]
