"""The fenced `bash` blocks marked `<!-- runnable -->` in README.md and docs/ run as written and exit 0.

Each block runs as one `bash -e` script in its own temporary directory, as a user who copied it would run it
from a checkout: `train.py` and `eval.py` sit next to it, and `TRAINSCOPE_DATA_DIR` / `TRAINSCOPE_OUTPUT_DIR`
point inside it, so nothing lands in the checkout. What counts as runnable is documented in docs/README.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env
from tests.helpers.markdown import REPO_ROOT, RUNNABLE_MARKER, Block, doc_pages

PAGES = doc_pages()
RUNNABLE = [block for page in PAGES for block in page.blocks if block.marked_runnable]


def test_every_marker_sits_on_the_line_before_a_bash_fence() -> None:
    marked_lines = {(block.path, block.line - 1) for block in RUNNABLE}
    stray = [
        f"{page.path.relative_to(REPO_ROOT)}:{line}"
        for page in PAGES
        for line in page.markers()
        if (page.path, line) not in marked_lines
    ]
    assert not stray, f"{RUNNABLE_MARKER} not directly above a fence: {stray}"
    not_bash = [block.where for block in RUNNABLE if block.language != "bash"]
    assert not not_bash, f"runnable blocks must be ```bash: {not_bash}"


def test_the_front_page_and_the_docs_have_runnable_commands() -> None:
    front_page = [block for block in RUNNABLE if block.path == REPO_ROOT / "README.md"]
    assert front_page, "README.md's tour should be marked runnable"
    assert len(RUNNABLE) > len(front_page), "no docs/ page has a runnable block"


def _checkout_outputs() -> list[Path]:
    """Run and sweep directories a stray command could leave in the checkout (its own ./outputs and ./data)."""
    return sorted(path for folder in ("outputs", "data") for path in (REPO_ROOT / folder).glob("*/*/*"))


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda block: block.where)
def test_runnable_block_exits_zero(block: Block, tmp_path: Path) -> None:
    for script in ("train.py", "eval.py"):
        (tmp_path / script).symlink_to(REPO_ROOT / script)
    env = cli_env(tmp_path / "outputs", tmp_path / "data")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    before = _checkout_outputs()

    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.text],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, (
        f"{block.where} exited {result.returncode}:\n{block.text}\n--- output (tail) ---\n"
        f"{(result.stdout + result.stderr)[-4000:]}"
    )
    assert _checkout_outputs() == before, "a documented command wrote into the checkout"
