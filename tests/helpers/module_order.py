"""The order pytest-xdist hands test modules to its workers: the longest first, so the run does not end on one.

`--dist loadscope` gives a worker a whole module at a time, from a queue, and by default orders that queue by
the number of tests in a module. Here the cost of a module is not its count: one Optuna test that waits out a
locked database takes longer than fifty unit tests. A long module taken last leaves the other worker idle
until it ends, so the queue is ordered by each module's measured seconds instead (longest-processing-time
first), from `tests/module_seconds.json`. `python -m pytest --store-module-seconds`
measures them again; a module not measured yet counts as `UNMEASURED_SECONDS`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

SECONDS_FILE = Path(__file__).resolve().parents[1] / "module_seconds.json"
UNMEASURED_SECONDS = 20.0
"""A new module is usually a few end-to-end runs: put it among the long ones rather than at the very end."""


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def longest_modules_first(items: list[pytest.Item], seconds_file: Path = SECONDS_FILE) -> None:
    """Sort `items` in place by their module's measured seconds, longest first; a module's tests keep their order."""
    seconds = json.loads(seconds_file.read_text()) if seconds_file.exists() else {}
    items.sort(key=lambda item: -seconds.get(module_of(item.nodeid), UNMEASURED_SECONDS))


class ModuleSeconds:
    """Adds up setup, call and teardown seconds per module as the reports come in; writes them at the end."""

    def __init__(self, seconds_file: Path = SECONDS_FILE) -> None:
        self.seconds_file = seconds_file
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        ordered = sorted(self.seconds.items(), key=lambda entry: -entry[1])
        self.seconds_file.write_text(json.dumps({name: round(value, 1) for name, value in ordered}, indent=1) + "\n")
