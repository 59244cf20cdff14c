"""xdist gets the longest modules first, and `--store-module-seconds` measures what "longest" means."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from tests.helpers.module_order import UNMEASURED_SECONDS, ModuleSeconds, longest_modules_first


def test_modules_go_longest_first_and_keep_their_tests_order(tmp_path: Path) -> None:
    seconds = tmp_path / "module_seconds.json"
    seconds.write_text(json.dumps({"tests/a.py": 1.0, "tests/b.py": 90.0, "tests/c.py": UNMEASURED_SECONDS - 1}))
    names = ["tests/a.py::x", "tests/c.py::y", "tests/b.py::z", "tests/new.py::w", "tests/b.py::v", "tests/a.py::u"]
    items = [SimpleNamespace(nodeid=name) for name in names]
    longest_modules_first(items, seconds)  # type: ignore[arg-type]
    assert [item.nodeid for item in items] == [
        "tests/b.py::z", "tests/b.py::v", "tests/new.py::w", "tests/c.py::y", "tests/a.py::x", "tests/a.py::u",
    ]  # fmt: skip


def test_module_seconds_add_up_every_phase_of_every_test(tmp_path: Path) -> None:
    seconds = tmp_path / "module_seconds.json"
    recorder = ModuleSeconds(seconds)
    for nodeid, duration in [("tests/a.py::x", 0.5), ("tests/a.py::x", 2.0), ("tests/b.py::y", 4.0)]:
        recorder.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, duration=duration))  # type: ignore[arg-type]
    recorder.pytest_sessionfinish()
    assert json.loads(seconds.read_text()) == {"tests/b.py": 4.0, "tests/a.py": 2.5}
    assert list(json.loads(seconds.read_text())) == ["tests/b.py", "tests/a.py"]
