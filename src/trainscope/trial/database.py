"""How a study in a database server watches its workers: `hydra.sweeper.heartbeat_*` and `reconnect_timeout`.

Both sides of a sweep need them (the sweeper beats for its trials and fails silent ones, a trial's job waits
out an outage no longer than its sweep), and the Optuna sweeper's settings (`OptunaSettings`) extend this class,
so each key, its type and default are written here once. A module of its own: the sweeper's config dataclass
is imported at every Hydra start, where optuna must not load.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainscope.core.errors import ConfigError


@dataclass
class DatabaseSettings:
    """Heartbeats and reconnecting, for studies in a database server (a journal file ignores them)."""

    # Database storages only: seconds between a running trial's heartbeats; a trial silent for longer than
    # the grace period belonged to a dead worker and is retried once; a lost connection is waited out
    # for reconnect_timeout seconds.
    heartbeat_interval: int = 30
    heartbeat_grace_period: int = 120
    reconnect_timeout: float = 300.0

    def check(self) -> None:
        """Raise a one-line ConfigError naming the first bad value."""
        for name in ("heartbeat_interval", "heartbeat_grace_period", "reconnect_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"hydra.sweeper.{name} must be a positive number of seconds, got {value!r}")
        if self.heartbeat_grace_period <= self.heartbeat_interval:
            raise ConfigError(
                f"hydra.sweeper.heartbeat_grace_period ({self.heartbeat_grace_period}) must be longer than "
                f"hydra.sweeper.heartbeat_interval ({self.heartbeat_interval}), or live trials look dead"
            )
