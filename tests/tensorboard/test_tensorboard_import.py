"""Importing trainscope's TensorBoard layer loads no cloud client (boto3, fsspec) and hides none from the user."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.helpers.cli import REPO_ROOT

CLOUD_CLIENTS = ("boto3", "botocore", "fsspec")


def run_python(code: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_writer_import_loads_no_cloud_client_and_the_user_can_still_import_them() -> None:
    installed = [name for name in CLOUD_CLIENTS if importlib.util.find_spec(name) is not None]
    report = run_python(
        "import importlib, json, sys\n"
        "import trainscope.tensorboard.writer\n"
        f"loaded = [name for name in {CLOUD_CLIENTS!r} if name in sys.modules]\n"
        f"usable = [importlib.import_module(name).__name__ for name in {installed!r}]\n"
        "print(json.dumps({'loaded': loaded, 'usable': usable}))"
    )
    assert report == {"loaded": [], "usable": installed}


def test_a_cloud_client_imported_first_is_left_alone() -> None:
    """Someone who imported fsspec before trainscope keeps TensorBoard's fsspec support."""
    pytest.importorskip("fsspec")
    report = run_python(
        "import fsspec, json\n"
        "import trainscope.tensorboard.writer\n"
        "from tensorboard.compat.tensorflow_stub.io import gfile\n"
        "print(json.dumps({'fsspec': gfile.FSSPEC_ENABLED}))"
    )
    assert report == {"fsspec": True}
