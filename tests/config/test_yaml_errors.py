"""A malformed YAML file in the config tree is one line naming the file, line and column; nothing starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import (
    REPO_ROOT,
    TINY,
    cli_env,
    error_line,
)


def copy_config_tree(tmp_path: Path) -> Path:
    """A copy of the project's `conf/` (and `experiments/`, which `conf/experiment` links to) to break."""
    shutil.copytree(REPO_ROOT / "experiments", tmp_path / "experiments")
    shutil.copytree(REPO_ROOT / "conf", tmp_path / "conf", symlinks=True)
    return tmp_path / "conf"


@pytest.mark.parametrize(
    ("relative_path", "broken", "line_column"),
    [
        ("experiment/mnist_cnn_tune.yaml", "trainer:\n  max_epochs: [8\n", "3:1"),
        ("model/mlp.yaml", "_target_: trainscope.models.MLP\nhidden: {a: 1\n", "3:1"),
    ],
    ids=["experiments", "conf_group"],
)
def test_malformed_yaml_is_one_line_with_file_line_and_column(
    relative_path: str, broken: str, line_column: str, tmp_path: Path, data_dir: Path
) -> None:
    conf = copy_config_tree(tmp_path)
    broken_file = (conf / relative_path).resolve()
    broken_file.write_text(broken)
    env = {**cli_env(tmp_path / "outputs", data_dir), "TRAINSCOPE_CONFIG_DIR": str(conf)}
    result = subprocess.run(
        [sys.executable, "train.py", *TINY], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    line = error_line(result)
    assert f"{conf / relative_path}:{line_column}: malformed YAML" in line, line
    assert not (tmp_path / "outputs").exists(), "nothing started"
