"""Runs that the resume and disk-full tests start from, made once per session: tests only read them or copy
them before writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import (
    FULL,
    TINY,
    TrainCLI,
    run_script,
    single_run_dir,
)
from tests.helpers.events import points_per_tag


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A completed one-epoch run, shared by the tests that only read it (copy it before resuming)."""
    cli = TrainCLI(tmp_path_factory.mktemp("finished"), data_dir)
    result = cli(*TINY, "trainer.max_epochs=1", "logging.progress_bar=false")
    assert result.returncode == 0, result.stderr
    return cli.run_dir()


@pytest.fixture(scope="session")
def reference_points(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, list[int]]:
    """The tags and steps of the `FULL` run never interrupted."""
    output_root = tmp_path_factory.mktemp("reference")
    result = run_script("train.py", FULL, output_root, data_dir)
    assert result.returncode == 0, result.stderr
    return points_per_tag(single_run_dir(output_root))
