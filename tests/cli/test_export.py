"""`trainscope-export`: a run's weights as a plain state dict; its mistakes are one `error:` line, exit 2 (the merge
itself is tested with real LoRA runs in tests/models/test_lora.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from trainscope.cli.export import main
from trainscope.core.checkpoint_io import save_checkpoint
from trainscope.core.run_dir import SAVED_CONFIG
from trainscope.models import MLP


def plain_run(run_dir: Path) -> tuple[Path, MLP]:
    model = MLP(input_shape=[1, 8, 8], num_classes=3, hidden_sizes=[4])
    (run_dir / SAVED_CONFIG).parent.mkdir(parents=True)
    OmegaConf.save({"finetune": {"lora": None}}, run_dir / SAVED_CONFIG)

    class Weights:
        def state_dict(self) -> dict[str, object]:
            return {"model": model.state_dict()}

    save_checkpoint(run_dir, Weights(), config_hash="test")  # type: ignore[arg-type]
    return run_dir, model


def test_the_weights_of_a_run_without_adapters_export_as_they_are(tmp_path: Path, capsys) -> None:
    run_dir, model = plain_run(tmp_path / "run")
    main([f"run={run_dir}", "checkpoint=last"])
    written = Path(capsys.readouterr().out.strip())
    assert written == run_dir / "export" / "model.pt"
    exported = torch.load(written, weights_only=True)
    assert all(torch.equal(exported[name], value) for name, value in model.state_dict().items())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["merged=true"], "error: pass the run to export: trainscope-export run=<run_dir> [merged=true]"),
        (["run=x", "merge=true"], "error: unknown argument 'merge=true'; usage: trainscope-export run=<run_dir>"),
        (["run=x", "merged=yes"], "error: merged must be true or false, got 'yes'"),
    ],
)
def test_usage_mistakes_are_one_line(arguments: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(message)


def test_merging_a_run_without_adapters_is_one_line(tmp_path: Path, capsys) -> None:
    run_dir, _ = plain_run(tmp_path / "run")
    with pytest.raises(SystemExit) as exited:
        main([f"run={run_dir}", "merged=true", "checkpoint=last"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"error: merged=true: {run_dir} trained without finetune.lora, so there are no adapters to merge; drop "
        "merged=true to export its weights as they are\n"
    )
    assert not (run_dir / "export").exists()
