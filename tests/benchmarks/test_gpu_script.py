"""`benchmarks/gpu.py --device cpu --quick` runs every section, so the GPU check works the day a GPU is at hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import REPO_ROOT


@pytest.mark.slow
def test_gpu_check_runs_every_section_on_the_cpu(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu.py", "--device", "cpu", "--quick"],
        cwd=REPO_ROOT,
        # its scratch folder (TMPDIR) under tmp_path; none of the test session's trainscope settings
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TRAINSCOPE_")}, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for section in (
        "Host-device syncs outside logging steps",
        "Per epoch against the raw loop",
        "Language model",
        "DDP smoke test",
    ):
        assert f"## {section}" in out, out
    assert "skipped: the time budget" not in out, out
    sync = out.split("## Host-device syncs")[1].split("##")[0]
    checks = [line.split("|") for line in sync.splitlines() if line.startswith(("| no augmentation", "| data.augment"))]
    assert len(checks) == 2 and all(int(cells[2]) > 0 for cells in checks), sync  # the window armed between steps
    rows = [line for line in out.splitlines() if line.startswith(("| cnn |", "| resnet18 |"))]
    assert [row.split("|")[3].strip() for row in rows] == ["off", "on", "off", "on"], out
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[4:7]]
        assert all(float(cell) > 0 for cell in cells), row  # raw s, trainscope s, their ratio
    ddp = [line for line in out.splitlines() if line.startswith("| `torchrun")]
    assert len(ddp) == 1 and "| 0 | completed | 2 | 1 |" in ddp[0], out
    language_model = out.split("## Language model")[1].split("##")[0]
    assert "tokens/s" in language_model or "skipped: this tree has no model=gpt" in language_model, language_model
