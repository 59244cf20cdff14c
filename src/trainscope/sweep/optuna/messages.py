"""The Optuna sweep's own terminal lines: `[optuna] ...`, printed and flushed at once (workers print them too)."""

from __future__ import annotations

PREFIX = "[optuna]"


def say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)
