"""Run directories are named by the short form of what varies, the same form their TensorBoard names use."""

from __future__ import annotations

from pathlib import Path

from trainscope.config.resolvers import MAX_DIR_NAME_BYTES, dir_name
from trainscope.config.run_names import override_items, short_override, write_swept_keys


def test_a_single_run_is_named_by_every_override_in_short_form() -> None:
    assert dir_name("") == ""
    assert dir_name("model=mlp") == "_model=mlp"
    assert dir_name("data.root=a/b") == "_root=a_b"
    assert dir_name("optimizer.lr=0.004627983191463305,trainer.max_epochs=3") == "_lr=4.6e-3,max_epochs=3"


def test_a_sweep_job_is_named_by_the_swept_keys_only(tmp_path: Path) -> None:
    write_swept_keys(tmp_path, ["optimizer.lr", "model.channels"])
    overrides = "data.batch_size=32,model.channels=[32,64],optimizer.lr=0.3,trainer.max_epochs=4"
    assert dir_name(overrides, str(tmp_path)) == "_channels=[32,64],lr=0.3"
    # a sweep without a record (a sweeper of another tool) keeps every override
    assert dir_name(overrides, str(tmp_path / "elsewhere")) == "_batch_size=32,channels=[32,64],lr=0.3,max_epochs=4"


def test_items_split_only_where_a_key_follows_the_comma() -> None:
    assert override_items("a=[1,2],+b.c=x,~d=y") == ["a=[1,2]", "+b.c=x", "~d=y"]
    assert short_override("+optimizer.weight_decay=1e-05") == "weight_decay=1e-5"
    assert [short_override(f"lr={value}") for value in ("inf", "-inf", "nan")] == ["lr=inf", "lr=-inf", "lr=nan"]


def test_a_long_command_line_is_cut_with_a_hash_that_keeps_names_apart() -> None:
    first = dir_name(",".join(f"k{i}=" + "x" * 30 for i in range(10)))
    second = dir_name(",".join(f"k{i}=" + "x" * 30 for i in range(9)) + ",k9=" + "y" * 30)
    assert len(first.encode()) <= MAX_DIR_NAME_BYTES + 1 and first != second
