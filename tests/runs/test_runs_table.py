"""`trainscope-runs` on run directories written as runs write them: columns, filters, sorting, formats (fast).

The command runs as a user runs it (`python -m trainscope.runs`, a subprocess) wherever its output or exit code
is the point; the real-training versions of these checks are in test_seed_grid.py and test_live_runs.py.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

from tests.helpers.cli import error_line
from tests.helpers.run_dirs import fake_run, runs_cli


def grid(root: Path) -> list[Path]:
    """2 learning rates x 3 seeds, as a grid sweep names its run directories (accuracies in 64ths: exact floats)."""
    runs = []
    for number, (lr, seed) in enumerate((lr, seed) for lr in ("0.1", "0.01") for seed in (1, 2, 3)):
        accuracies = [0.5 + seed / 64, 0.625 + (0.125 if lr == "0.1" else 0) + seed / 32, 0.5625 + seed / 64]
        overrides = ["model=mlp", f"optimizer.lr={lr}", f"trainer.seed={seed}"]
        runs.append(fake_run(root / f"{number}_optimizer.lr={lr},trainer.seed={seed}", overrides, accuracies))
    return runs


def as_json(*args: str) -> list[dict]:
    result = runs_cli(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_default_columns_are_the_differing_overrides_and_the_watched_metrics(tmp_path: Path) -> None:
    runs = grid(tmp_path)
    result = runs_cli(str(tmp_path))
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    # model=mlp is the same in every row: not a column; the monitored metric's best repeats val/acc_best: shown once
    assert header == [
        "status",
        *("optimizer.lr", "trainer.seed", "val/acc", "val/acc_best", "test/acc"),
        *("epochs", "steps", "wall_time", "checkpoint", "run_dir"),
    ]
    rows = as_json(str(tmp_path))
    assert [row["run_dir"] for row in rows] == [str(run) for run in runs]
    assert rows[1] == {
        "status": "completed",
        "optimizer.lr": 0.1,
        "trainer.seed": 2,
        "val/acc": 0.59375,
        "val/acc_best": 0.8125,
        "test/acc": 0.5,
        "epochs": 3,
        "steps": 30,
        "wall_time": 12.5,
        "checkpoint": str(runs[1] / "checkpoints/best.pt"),
        "run_dir": str(runs[1]),
    }


def test_a_monitored_metric_gets_its_best_column_where_it_says_something_new(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", ["optimizer.lr=0.1"], [0.3, 0.2, 0.1], monitor=("val/loss", "min"))
    fake_run(tmp_path / "b", ["optimizer.lr=0.2"], [0.3, 0.4, 0.1], monitor=("val/loss", "min"))
    (row_a, row_b) = as_json(str(tmp_path), "--columns", "val/loss,val/loss@best")
    assert row_a == {"val/loss": 0.9, "val/loss@best": 0.7}  # the lowest: monitor.mode=min
    assert row_b == {"val/loss": 0.9, "val/loss@best": 0.6}
    header = runs_cli(str(tmp_path)).stdout.splitlines()[0].split()
    assert header[:5] == ["status", "optimizer.lr", "val/loss", "val/loss@best", "val/acc_best"]


def test_csv_parses_with_the_csv_module_and_holds_checkpoint_paths(tmp_path: Path) -> None:
    runs = grid(tmp_path)
    result = runs_cli(str(tmp_path), "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [Path(row["checkpoint"]) for row in rows] == [run / "checkpoints/best.pt" for run in runs]
    assert all(Path(row["checkpoint"]).is_file() for row in rows)
    assert [float(row["val/acc"]) for row in rows] == [0.578125, 0.59375, 0.609375] * 2


def test_filters_sort_and_columns(tmp_path: Path) -> None:
    grid(tmp_path / "grid")
    fake_run(tmp_path / "failed", ["optimizer.lr=1.0"], [0.1], status="failed", test_acc=None)
    filters = ["--filter", "status=completed", "--filter", "val/acc_best>0.75"]
    rows = as_json(str(tmp_path), *filters, "--sort=-val/acc_best,trainer.seed")
    assert [(row["optimizer.lr"], row["trainer.seed"], row["val/acc_best"]) for row in rows] == [
        (0.1, 3, 0.84375),
        (0.1, 2, 0.8125),
        (0.1, 1, 0.78125),
    ]
    failed = as_json(str(tmp_path), "--filter", "status!=completed", "--columns", "status,reason,optimizer.lr")
    assert failed == [{"status": "failed", "reason": "failed for a reason", "optimizer.lr": 1.0}]
    markdown = runs_cli(str(tmp_path), "--format", "markdown", "--columns", "optimizer.lr,status", "--sort", "status")
    assert markdown.stdout.splitlines()[:3] == ["| optimizer.lr | status |", "| --- | --- |", "| 0.1 | completed |"]


def test_group_by_collapses_the_seeds_into_mean_std_and_n(tmp_path: Path) -> None:
    runs = grid(tmp_path)
    groups = as_json(str(tmp_path), "--group-by")
    assert [group["optimizer.lr"] for group in groups] == [0.1, 0.01]
    for group, members in zip(groups, (runs[:3], runs[3:]), strict=True):
        values = [json.loads((run / "metrics.json").read_text())["final"]["val/acc_best"] for run in members]
        assert group["n"] == 3 and group["status"] == "3 completed"
        assert group["val/acc_best"] == statistics.fmean(values)
        assert group["val/acc_best:std"] == statistics.stdev(values)
        assert group["runs"] == [str(run) for run in members]
    table = runs_cli(str(tmp_path), "--group-by").stdout
    assert "0.8125 ± 0.031" in table and "3 completed" in table  # mean ± std in one cell
    by_seed = as_json(str(tmp_path), "--group-by", "trainer.seed", "--columns", "trainer.seed,n,test/acc,test/acc:std")
    assert by_seed == [{"trainer.seed": seed, "n": 2, "test/acc": 0.5, "test/acc:std": 0.0} for seed in (1, 2, 3)]


def test_a_group_where_some_runs_lack_a_metric_counts_it_per_metric(tmp_path: Path) -> None:
    fake_run(tmp_path / "a", ["trainer.seed=1"], [0.5], test_acc=0.75)
    fake_run(tmp_path / "b", ["trainer.seed=2"], [0.7], test_acc=None)
    (group,) = as_json(str(tmp_path), "--group-by")
    assert (group["n"], group["test/acc"], group["test/acc:n"], group["test/acc:std"]) == (2, 0.75, 1, None)
    assert "0.75 (n=1)" in runs_cli(str(tmp_path), "--group-by").stdout


def test_a_folder_without_runs_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty" / ".hydra").mkdir(parents=True)  # a run that stopped at a config error: not a run
    (tmp_path / "empty" / ".hydra" / "config.yaml").write_text("{}\n")
    line = error_line(runs_cli(str(tmp_path)))
    assert line.startswith(f"error: {tmp_path} holds no run directories")
    assert runs_cli(str(tmp_path)).returncode == 2
    missing = runs_cli(str(tmp_path / "nope"))
    assert error_line(missing) == (
        f"error: {tmp_path / 'nope'}: no such folder; pass folders that hold run directories, e.g. outputs/"
    )
    assert missing.returncode == 2


def test_unknown_columns_and_bad_filters_are_one_line_and_exit_2(tmp_path: Path) -> None:
    grid(tmp_path)
    for args, start in (
        (["--filter", "val/accuracy>0.9"], "error: --filter: no column 'val/accuracy'; the columns are: status, "),
        (["--filter", "val/acc"], "error: --filter 'val/acc' is not <column><op><value>"),
        (["--sort", "speed"], "error: --sort: no column 'speed'"),
        (["--columns", "status,lr"], "error: --columns: no column 'lr'"),
        (["--group-by", "optimiser.lr"], "error: --group-by: no column 'optimiser.lr'"),
        (["--format", "xlsx"], "error: argument --format: invalid choice: 'xlsx'"),
    ):
        result = runs_cli(str(tmp_path), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert error_line(result).startswith(start), (args, result.stderr)


def test_a_broken_run_is_a_row_marked_unreadable_not_a_crash(tmp_path: Path) -> None:
    good, torn, alien = grid(tmp_path)[:3]
    (torn / "metrics.json").write_text('{"status": "compl')  # a foreign tool cut it short
    (alien / ".hydra/overrides.yaml").write_text("just: a mapping\n")
    rows = as_json(str(tmp_path), "--columns", "status,reason,run_dir")
    by_dir = {Path(row["run_dir"]): row for row in rows}
    assert by_dir[good]["status"] == "completed"
    assert by_dir[torn]["status"] == "unreadable"
    assert by_dir[torn]["reason"].startswith("metrics.json is not valid JSON (")
    assert by_dir[alien] == {
        "status": "unreadable",
        "reason": ".hydra/overrides.yaml is not a list of key=value overrides",
        "run_dir": str(alien),
    }
    table = runs_cli(str(tmp_path))
    assert table.returncode == 0 and "unreadable" in table.stdout and table.stderr == ""


def test_a_hostile_run_directory_runs_no_code_and_blocks_nothing(tmp_path: Path) -> None:
    import os

    (run,) = [fake_run(tmp_path / "run", ["optimizer.lr=0.1"], [0.5])]
    marker = tmp_path / "pwned"
    (run / ".hydra/overrides.yaml").write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    (run / ".hydra/config.yaml").write_text(f"monitor: !!python/object/apply:os.system ['touch {marker}']\n")
    (run / "metrics.json").unlink()
    os.mkfifo(run / "metrics.json")  # opening it for reading would wait for a writer forever
    os.mkfifo(run / "run.lock")
    result = runs_cli(str(tmp_path), "--format", "json", "--columns", "status,reason", timeout=30)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["status"] == "unreadable"
    assert ".hydra/overrides.yaml is not valid YAML (could not determine a constructor" in row["reason"]
    assert "metrics.json is not a file" in row["reason"]
    assert not marker.exists()


def test_a_dead_run_with_a_fifo_for_metrics_csv_is_unreadable_not_a_hang(tmp_path: Path) -> None:
    import os

    run = fake_run(tmp_path / "run", ["optimizer.lr=0.1"], [0.5], status=None)
    (run / "metrics.csv").unlink()
    os.mkfifo(run / "metrics.csv")
    (row,) = as_json(str(tmp_path), "--columns", "status,reason")
    assert row == {"status": "unreadable", "reason": "metrics.csv is not a file of at most 16 MiB"}


def test_a_run_that_died_before_metrics_json_shows_its_progress_from_metrics_csv(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["optimizer.lr=0.1"], [0.5, 0.8, 0.7], status=None)
    (run / "run.lock").write_text("12345\n")  # left by the killed process; nobody holds it
    (row,) = as_json(str(tmp_path), "--columns", "status,val/acc,val/acc@best,epochs,steps")
    assert row == {"status": "dead", "val/acc": 0.7, "val/acc@best": 0.8, "epochs": 3, "steps": 30}


def test_a_run_whose_lock_a_live_process_holds_shows_as_running(tmp_path: Path) -> None:
    import subprocess
    import sys

    run = fake_run(tmp_path / "run", ["optimizer.lr=0.1"], [0.5, 0.8], status="interrupted")  # resumed, training
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from trainscope.core.run_lock import run_lock\n"
            f"with run_lock(Path({str(run)!r})):\n    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        (row,) = as_json(str(tmp_path), "--columns", "status,val/acc,epochs,wall_time")
        assert row["status"] == "running" and row["val/acc"] == 0.8 and row["epochs"] == 2
        assert 0 <= row["wall_time"] < 60  # since the process took the lock
        # the interrupted segment's test is not this run's result: the run tests again when it ends
        assert "test/acc" not in runs_cli(str(tmp_path)).stdout
    finally:
        holder.communicate("", timeout=30)
    (row,) = as_json(str(tmp_path), "--columns", "status")
    assert row == {"status": "interrupted"}


def test_a_live_runs_saved_config_is_read_through_its_key_references_never_its_resolvers(tmp_path: Path) -> None:
    import yaml

    from trainscope.runs.record import read_run

    run = fake_run(tmp_path / "run", ["task=regression"], [0.5, 0.3, 0.4], status=None)
    config = {  # the shape of a task config group: monitor and optimized metric name the task's keys
        "task": {"monitor": {"metric": "val/acc", "mode": "min"}},
        "monitor": {"metric": "${task.monitor.metric}", "mode": "${task.monitor.mode}"},
        "optimized_metric": "${task.monitor.metric}_best",
        "trainer": {"seed": "${oc.env:HOME}", "max_epochs": "${trainer.seed}"},  # a resolver: never called
    }
    (run / ".hydra/config.yaml").write_text(yaml.safe_dump(config))
    (row,) = as_json(str(tmp_path), "--columns", "status,val/acc,val/acc@best,val/acc_best")
    assert row == {"status": "dead", "val/acc": 0.4, "val/acc@best": 0.3, "val/acc_best": 0.5}  # best: mode=min
    header = runs_cli(str(tmp_path)).stdout.splitlines()[0].split()
    assert header[:4] == ["status", "val/acc", "val/acc@best", "val/acc_best"]
    record = read_run(run)
    assert (record.monitor, record.monitor_mode, record.optimized) == ("val/acc", "min", ("val/acc_best",))
    assert record.setting("trainer.seed") is None and record.setting("trainer.max_epochs") is None
