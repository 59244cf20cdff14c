"""A run directory on a read-only file system (a shared, read-only copy of someone's run): what writes into the
run (eval.py, resume=) says so in one line, what only reads it (generate.py) opens nothing in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import error_line, resume_cli, run_script, snapshot
from tests.helpers.disk import make_read_only, small_disk


@pytest.mark.slow
def test_a_read_only_run_is_one_line_for_eval_resume_and_generate(
    finished_run: Path, tmp_path: Path, data_dir: Path
) -> None:
    with small_disk(tmp_path / "disk", 16 * 2**20) as disk:
        run_dir = disk / finished_run.name
        shutil.copytree(finished_run, run_dir)
        make_read_only(disk)
        before = snapshot(run_dir)

        evaluated = run_script("eval.py", [f"run={run_dir}"], tmp_path / "unused", data_dir)
        assert evaluated.returncode == 2
        assert "cannot be written (read-only file system); eval.py writes the test metrics" in error_line(evaluated)

        resumed = resume_cli(run_dir, data_dir, "trainer.max_epochs=2")
        assert resumed.returncode == 2
        assert f"cannot write into {run_dir} (Read-only file system)" in error_line(resumed)

        generated = run_script("generate.py", [f"run={run_dir}"], tmp_path / "unused", data_dir)
        assert "tokenizer does not exist" in error_line(generated)  # got past Hydra's log file: opened none
        assert snapshot(run_dir) == before
