"""Data-parallel training with torch.distributed on the CPU (gloo): real torchrun jobs of 2 processes.

The 2-process runs use per-rank batch 16 and the 1-process reference batch 32: 192 training samples make 6 equal
steps an epoch either way, so both see the same global batches and must end with the same weights and metrics.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import (
    REPO_ROOT,
    cli_env,
    error_line,
    resume_cli,
    run_script,
    single_run_dir,
    snapshot,
    start_training,
    wait_for_checkpoint,
)
from tests.helpers.events import read_events, session_infos
from trainscope.core.run_dir import RunStatus
from trainscope.data import build_data

PER_RANK_BATCH = 16
RUN = [
    "data=synthetic",
    "data.num_samples=256",
    "data.val_fraction=0.25",  # 64 val samples: 2 shards of 32
    "model=mlp",
    "trainer.max_epochs=2",
    "trainer.device=cpu",
    "logging.log_every_n_steps=2",
    "logging.progress_bar=false",
    "callbacks.checkpoint.every_n_steps=2",
]
TWO_RANKS = [*RUN, f"data.batch_size={PER_RANK_BATCH}"]
TOLERANCE = 1e-5


def torchrun(
    launcher_args: list[str], train_args: list[str], output_root: Path, data_dir: Path, **popen: object
) -> subprocess.Popen[str]:
    """`torchrun <launcher_args> train.py <train_args>` (through this interpreter: the venv's own torch)."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *launcher_args, "train.py", *train_args],
        cwd=REPO_ROOT,
        env=cli_env(output_root, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,  # type: ignore[arg-type]
    )


def finish(process: subprocess.Popen[str], timeout: float = 180) -> str:
    output, _ = process.communicate(timeout=timeout)
    return output


def final_state(run_dir: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    weights = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    return metrics, weights


def assert_same_training(run_dir: Path, reference_dir: Path) -> None:
    metrics, weights = final_state(run_dir)
    reference_metrics, reference_weights = final_state(reference_dir)
    assert metrics["status"] == reference_metrics["status"] == RunStatus.COMPLETED
    assert metrics["global_step"] == reference_metrics["global_step"] == 12
    for tag in ("val/loss", "val/acc", "train/loss", "train/acc", "test/loss", "test/acc"):
        assert metrics["final"][tag] == pytest.approx(reference_metrics["final"][tag], abs=TOLERANCE), tag
    for name, tensor in reference_weights.items():
        assert torch.allclose(weights[name], tensor, atol=TOLERANCE, rtol=0), name


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 1-process run at batch 32 and one uninterrupted 2-rank torchrun run at batch 16 per rank."""
    root = tmp_path_factory.mktemp("reference")
    data_dir = root / "data"
    one = run_script("train.py", [*RUN, f"data.batch_size={2 * PER_RANK_BATCH}"], root / "one", data_dir)
    assert one.returncode == 0, one.stderr
    two = torchrun(["--nproc_per_node=2"], TWO_RANKS, root / "two", data_dir)
    output = finish(two)
    assert two.returncode == 0, output
    return {"one": single_run_dir(root / "one"), "two": single_run_dir(root / "two"), "data": data_dir}


@pytest.mark.slow
def test_two_ranks_at_batch_b_train_as_one_process_at_batch_2b(reference_runs: dict[str, Path]) -> None:
    # DDP averages the two ranks' mean gradients, which equals the mean over the 2B batch; only the float
    # summation order differs (per-rank sums, then the all-reduce), hence a tolerance instead of bitwise equality.
    assert_same_training(reference_runs["two"], reference_runs["one"])


@pytest.mark.slow
def test_a_two_rank_run_looks_like_a_one_process_run_in_tensorboard(reference_runs: dict[str, Path]) -> None:
    one, two = reference_runs["one"], reference_runs["two"]
    assert len(list(two.glob("events.out.tfevents.*"))) == 1
    assert len(list(two.parent.iterdir())) == 1, "every rank must use rank 0's run directory"
    assert session_infos(two, "_hparams_/session_start_info") == 1
    assert session_infos(two, "_hparams_/session_end_info") == 1
    assert (two / "metrics.json").is_file() and (two / "train.log").is_file()
    tags, reference_tags = read_events(two).Tags(), read_events(one).Tags()
    for kind in ("scalars", "images", "histograms", "tensors"):
        assert sorted(tags[kind]) == sorted(reference_tags[kind]), kind
    scalars = read_events(two)
    steps = [event.step for event in scalars.Scalars("train/loss_step")]
    assert steps == sorted(set(steps)), "one writer: each logged step appears once"
    log = (two / "train.log").read_text()
    assert "distributed: 2 processes, 32 samples per step" in log
    assert "[rank 1]" not in log


def results_of(files: dict[Path, bytes]) -> dict[Path, bytes]:
    """What a run produced, of a `snapshot`: checkpoints, metrics.json and TensorBoard event files."""
    return {
        path: data
        for path, data in files.items()
        if "checkpoints" in path.parts or path.name == "metrics.json" or path.name.startswith("events.out")
    }


@pytest.mark.slow
def test_a_two_rank_run_resumed_by_one_process_is_one_line_and_untouched(
    reference_runs: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "two"
    shutil.copytree(reference_runs["two"], run_dir)
    before = snapshot(run_dir)

    result = resume_cli(run_dir, reference_runs["data"], "trainer.max_epochs=3")  # python train.py: 1 process

    assert result.returncode == 2
    assert error_line(result) == (
        f"error: resume: {run_dir} trained on 2 processes, this job has 1; resume it on 2 "
        "(trainer.devices=2, or torchrun with 2 processes in all), or start a new run"
    )
    # The global batch would have halved: its checkpoints, event file and metrics.json are byte-identical (as for
    # every resume refused once the run started, .hydra/, train.log and run.lock record the refused attempt).
    assert results_of(snapshot(run_dir)) == results_of(before)
    assert len(results_of(before)) >= 4  # last.pt, best.pt, metrics.json, one event file


def test_each_rank_reads_its_shard_of_the_global_shuffle_on_both_loader_paths(tmp_path: Path) -> None:
    def split_batches(loader: str, rank: int, world_size: int, batch_size: int) -> tuple[list, list]:
        data = build_data(
            dataset="synthetic",
            root=str(tmp_path),
            input_shape=[1, 4, 4],
            num_classes=3,
            batch_size=batch_size,
            val_fraction=0.25,
            split_seed=0,
            num_workers=0,
            loader=loader,
            download=False,
            mean=[0.5],
            std=[0.28],
            augment={"crop_padding": 0, "horizontal_flip": False},
            num_samples=90,  # 68 train (not a multiple of 2 * 8: the last steps pad), 22 val
            device="cpu",
            seed=3,
            rank=rank,
            world_size=world_size,
        )
        data.train.set_epoch(1)
        return [x for x, _ in data.train], [x for x, _ in data.val]

    for loader in ("in_memory", "dataloader"):
        (whole_train, whole_val) = split_batches(loader, 0, 1, 16)
        shards = [split_batches(loader, rank, 2, 8) for rank in (0, 1)]
        train0, train1 = shards[0][0], shards[1][0]
        assert len(train0) == len(train1) == len(whole_train) == 5  # equal steps on every rank
        for step, whole in enumerate(whole_train[:-1]):  # full global batches: rank r holds rows r, r+2, ...
            assert torch.equal(train0[step], whole[0::2]) and torch.equal(train1[step], whole[1::2])
        # validation: every sample exactly once across the ranks, no padding
        val = torch.cat([*shards[0][1], *shards[1][1]])
        assert len(val) == 22 and torch.equal(val.sort(dim=0).values, torch.cat(whole_val).sort(dim=0).values)


@pytest.mark.slow
def test_a_stop_requested_on_rank_0_stops_every_rank_at_the_same_step(
    reference_runs: dict[str, Path], tmp_path: Path
) -> None:
    # How pruning works in a DDP trial: the decision is taken on rank 0 only; without the stop agreement rank 1
    # would go on into the next gradient all-reduce and wait forever.
    job = torchrun(
        ["--nproc_per_node=2"],
        [
            *TWO_RANKS,
            "+callbacks.prune._target_=tests.helpers.faults.StopOnRankAtStep",
            "+callbacks.prune.rank=0",
            "+callbacks.prune.step=3",
        ],
        tmp_path / "outputs",
        reference_runs["data"],
    )
    output = finish(job, timeout=120)
    assert job.returncode == 0, output
    metrics = json.loads((single_run_dir(tmp_path / "outputs") / "metrics.json").read_text())
    assert (metrics["status"], metrics["global_step"]) == (RunStatus.PRUNED, 3)
    assert metrics["reason"] == "rank 0 decided at step 3"
    assert "[rank 1]" in output and "stopping: rank 0 decided at step 3" in output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_one_host_train_one_run(reference_runs: dict[str, Path], tmp_path: Path) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [
        torchrun(
            [
                "--nnodes=2",
                f"--node-rank={node}",
                "--nproc_per_node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                "--rdzv-id=two-nodes",
                # on one host both agents match the endpoint's address: say which one hosts the rendezvous store
                f"--rdzv-conf=is_host={int(node == 0)}",
            ],
            TWO_RANKS,
            tmp_path / "outputs",
            reference_runs["data"],
        )
        for node in (0, 1)
    ]
    outputs = [finish(node) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert_same_training(single_run_dir(tmp_path / "outputs"), reference_runs["two"])


@pytest.mark.slow
def test_a_killed_rank_is_restarted_and_the_run_resumes_to_the_same_result(
    reference_runs: dict[str, Path], tmp_path: Path
) -> None:
    # Rank 1 dies by SIGKILL after step 9 (mid epoch 2; the last checkpoint is step 8). torchrun stops rank 0,
    # restarts both, and the restarted rank 0 resumes the same run directory from that checkpoint.
    job = torchrun(
        ["--nproc_per_node=2", "--max-restarts=1", "--monitor-interval=0.2"],
        [
            *TWO_RANKS,
            "+callbacks.kill._target_=tests.helpers.faults.KillRankAtStep",
            "+callbacks.kill.rank=1",
            "+callbacks.kill.step=9",
        ],
        tmp_path / "outputs",
        reference_runs["data"],
    )
    output = finish(job)
    assert job.returncode == 0, output
    assert "resuming" in output and "from last.pt: epoch 2, batch 2, step 8" in output
    assert_same_training(single_run_dir(tmp_path / "outputs"), reference_runs["two"])


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_every_rank_with_one_checkpoint_and_exit_143(
    reference_runs: dict[str, Path], tmp_path: Path
) -> None:
    output_root = tmp_path / "outputs"
    long_run = [*TWO_RANKS, "trainer.devices=2", "trainer.max_epochs=400"]
    launcher = start_training(long_run, output_root, reference_runs["data"])
    run_dir = wait_for_checkpoint(output_root, launcher)
    launcher.send_signal(signal.SIGTERM)
    output = finish(launcher)
    assert launcher.returncode == 143, output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == RunStatus.INTERRUPTED
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["trainer"]["global_step"] == metrics["global_step"]  # written at the stop, by one rank
    assert output.count("interrupted by SIGTERM at step") == 2  # each rank stopped at the same step
    assert f"at step {metrics['global_step']};" in output

    # resumable: `resume=` continues it in 2 processes (trainer.devices=2 is part of the saved run)
    epochs = metrics["epochs_run"] + 1
    resumed = run_script(
        "train.py", [f"resume={run_dir}", f"trainer.max_epochs={epochs}"], output_root, reference_runs["data"]
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["status"] == RunStatus.COMPLETED and final["epochs_run"] == epochs
    assert session_infos(run_dir, "_hparams_/session_start_info") == 1


def test_a_sweep_under_torchrun_is_one_line_error(tmp_path: Path) -> None:
    # every rank would run its own sweep: a sweep of distributed runs is `-m trainer.devices=N` instead
    launched = {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "train.py", "-m", "model=mlp"],
        cwd=REPO_ROOT,
        env={**cli_env(tmp_path / "outputs", tmp_path / "data"), **launched},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: torchrun trains one run; for a sweep of distributed runs use python train.py -m trainer.devices=N ..."
    )
