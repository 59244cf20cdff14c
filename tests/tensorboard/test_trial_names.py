"""The short HParams name of a run (the Trial ID column): readable, unique, at most 40 characters."""

from __future__ import annotations

from pathlib import Path

from trainscope.config.run_names import write_swept_keys
from trainscope.tensorboard.trial_names import MAX_NAME_CHARS, trial_name


def test_a_sweep_job_is_named_by_its_sweeps_time_its_number_and_only_the_swept_keys_rounded(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "multirun" / "2026-12-02" / "14-50-07_2"
    write_swept_keys(sweep_dir, ["optimizer.lr", "model"])
    overrides = ["model=cnn", "optimizer.lr=0.004627983191463305", "trainer.max_epochs=1"]
    expected = "1202-145007_2 #3 model=cnn,lr=4.6e-3"
    assert trial_name(sweep_dir / "3_model=cnn,optimizer.lr=0.0046", overrides) == expected


def test_single_runs_keep_their_time_same_second_suffix_and_overrides(tmp_path: Path) -> None:
    runs = tmp_path / "runs" / "2026-12-02"
    assert trial_name(runs / "14-05-00", []) == "1202-140500"
    assert trial_name(runs / "14-05-00_model=mlp_2", ["model=mlp"]) == "1202-140500_2 model=mlp"
    assert trial_name(tmp_path / "exp1", ["optimizer.lr=1e-3"]) == "exp1 lr=1e-3"


def test_a_long_name_is_cut_to_40_characters_and_stays_distinct(tmp_path: Path) -> None:
    runs = tmp_path / "runs" / "2026-12-02"
    overrides = ["model=mlp", "data.batch_size=64", "model.channels=[32,64]", "trainer.max_epochs=3"]
    first = trial_name(runs / "14-05-00_a", overrides)
    second = trial_name(runs / "14-05-00_b", overrides)
    assert len(first) == len(second) == MAX_NAME_CHARS and first != second
