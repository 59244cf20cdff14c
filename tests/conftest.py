"""Fixtures shared by every test module; the helpers they use live in `tests/helpers/`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import TrainCLI


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset cache for the whole session, like a user's `data/` folder."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def train(tmp_path: Path, data_dir: Path) -> TrainCLI:
    return TrainCLI(tmp_path / "outputs", data_dir)
