"""A real TensorBoard server in the test process, queried the way its HParams tab queries it."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tensorboard import program

ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def start_tensorboard(logdir: Path) -> str:
    """Start a real TensorBoard server in this process, as `tensorboard --logdir` would; returns its URL.

    It reads the event files with TensorBoard's Python ingester (`--load_fast=false`) in this process: the Rust data
    server it would otherwise spawn keeps its stdin pipe open until the interpreter exits, by design, and the test
    process would end with an unclosed file, a running subprocess and a temporary folder left to the interpreter.
    """
    board = program.TensorBoard()
    board.configure(
        argv=[
            None, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0", "--reload_interval", "1",
            "--load_fast", "false",
        ]
    )  # fmt: skip
    return board.launch().rstrip("/")


def hparams_query(url: str, route: str, request: dict[str, Any]) -> dict[str, Any]:
    query = urllib.parse.urlencode({"request": json.dumps(request)})
    with urllib.request.urlopen(f"{url}/data/plugin/hparams/{route}?{query}", timeout=10) as response:
        return json.loads(response.read())


def experiment(url: str) -> dict[str, Any]:
    return hparams_query(url, "experiment", {"experimentName": ""})


def session_groups(url: str) -> list[dict[str, Any]]:
    request = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "startIndex": 0, "sliceSize": 1000}
    return hparams_query(url, "session_groups", request).get("sessionGroups", [])


def metric_values(session: dict[str, Any]) -> dict[str, float]:
    return {item["name"]["tag"]: item["value"] for item in session.get("metricValues", [])}


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy (the server reloads every second)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)
