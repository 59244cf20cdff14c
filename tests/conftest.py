"""Fixtures shared by every test module; the helpers they use live in `tests/helpers/`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.checkout import untracked_entries
from tests.helpers.cli import REPO_ROOT, TrainCLI
from tests.helpers.module_order import ModuleSeconds, longest_modules_first

CHECKOUT_BEFORE = pytest.StashKey[set[str] | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-module-seconds",
        action="store_true",
        help="write each test module's seconds to tests/module_seconds.json (the order xdist hands modules out)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("store_module_seconds") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ModuleSeconds())
    if config.pluginmanager.hasplugin("xdist"):
        config.option.loadscopereorder = False  # keep the longest-module-first order (helpers/module_order.py)
    share_the_cores_between_workers()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    longest_modules_first(items)


def share_the_cores_between_workers() -> None:
    """Under pytest-xdist (`-n auto`), share the cores between the workers instead of oversubscribing them.

    Each worker and every `python train.py` it starts would otherwise run torch with one thread per core, so
    two workers on 2 cores run 4+ busy threads that spin against each other. An `OMP_NUM_THREADS` the user set
    wins; the product's own parallel sweep workers do the same (`sweep/optuna/workers/local.py`).
    """
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers is None:
        return
    threads = max((os.cpu_count() or 1) // int(workers), 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset cache for the whole session, like a user's `data/` folder."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def train(tmp_path: Path, data_dir: Path) -> TrainCLI:
    return TrainCLI(tmp_path / "outputs", data_dir)


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: the controller's session spans every worker's tests
    session.stash[CHECKOUT_BEFORE] = untracked_entries(REPO_ROOT)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a test wrote into the checkout (`outputs/<date>/...`, a stray run directory)."""
    before = session.stash.get(CHECKOUT_BEFORE, None)
    after = untracked_entries(REPO_ROOT)
    if before is None or after is None:
        return
    added = sorted(after - before)
    if added:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"tests wrote into the checkout {REPO_ROOT} (write under tmp_path instead): {', '.join(added)}"
        if reporter is not None:
            reporter.write_line(f"ERROR: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
