"""HParams: what a user sees in TensorBoard's HParams tab, checked with TensorBoard's own readers and server."""

from __future__ import annotations

import enum
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.plugins.hparams import api_pb2, metadata
from torch.utils.tensorboard import SummaryWriter

from tests.helpers.cli import TINY, TrainCLI
from tests.helpers.events import read_events
from tests.helpers.tensorboard_server import experiment, metric_values, session_groups, start_tensorboard, wait_for
from trainscope.config.flatten import hparams_from_config, is_hparam_key, normalize_value
from trainscope.tensorboard.hparams import (
    DEFAULT_METRICS,
    RUNNING_STATE,
    TRIAL_STATE_TAG,
    TRIAL_STATES,
    HParamsSession,
    Interval,
    write_experiment_declaration,
)


def last_scalar(run_dir: Path, tag: str) -> float:
    accumulator = read_events(run_dir)
    return accumulator.Scalars(tag)[-1].value


def hparams_events(run_dir: Path) -> dict[str, list]:
    """Every `_hparams_/*` value in the run's event files, read raw (no first-metadata-wins dedup)."""
    found: dict[str, list] = {}
    for path in sorted(run_dir.glob("*tfevents*")):
        for event in event_file_loader.EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag.startswith("_hparams_/"):
                    found.setdefault(value.tag, []).append(value)
    return found


# ---------------------------------------------------------------- flattening


class Color(enum.Enum):
    RED = 1


def test_flatten_takes_group_choices_and_section_leaves_with_one_type_per_value() -> None:
    cfg = OmegaConf.create(
        {
            "paths": {"data_dir": "/data"},
            "model": {"_target_": "trainscope.models.cnn.build", "channels": [16, 32], "dropout": None},
            "data": {"root": "${paths.data_dir}", "num_classes": 10, "augment": {"flip": True}},
            "optimizer": {"lr": 0.001, "betas": (0.9, 0.99), "weight_decay": "???"},
            "scheduler": {"warmup": "${trainer.max_epochs}"},
            "trainer": {"max_epochs": 3, "seed": 7},
            "logging": {"log_every_n_steps": 5},
        }
    )
    choices = {"model": "cnn", "optimizer": "adam", "hydra/launcher": "basic", "experiment": None}

    hparams = hparams_from_config(cfg, choices)

    assert hparams == {
        "model": "cnn",
        "optimizer": "adam",
        "model.channels": "[16, 32]",
        "data.root": "/data",
        "data.num_classes": 10,
        "data.augment.flip": True,
        "optimizer.lr": 0.001,
        "optimizer.betas": "[0.9, 0.99]",
        "trainer.max_epochs": 3,
        "trainer.seed": 7,
    }  # no _target_, None, ???, hydra/* group, logging.*, or copy of trainer.max_epochs


def test_normalize_value_turns_numpy_torch_and_containers_into_python_scalars() -> None:
    assert normalize_value(np.float32(0.5)) == 0.5 and type(normalize_value(np.float32(0.5))) is float
    assert normalize_value(np.int64(3)) == 3 and type(normalize_value(np.int64(3))) is int
    assert normalize_value(np.bool_(True)) is True
    assert normalize_value(torch.tensor(2)) == 2 and type(normalize_value(torch.tensor(2))) is int
    assert normalize_value([np.int64(1), 2.5, None]) == "[1, 2.5, null]"
    assert normalize_value({"a": [1]}) == '{"a": [1]}'
    assert normalize_value(Color.RED) == "RED"
    assert normalize_value(None) is None


def test_flatten_include_and_exclude_are_fnmatch_patterns_on_flat_keys() -> None:
    cfg = OmegaConf.create({"model": {"width": 8}, "optimizer": {"lr": 0.1, "momentum": 0.9}, "trainer": {"seed": 1}})
    choices = {"model": "mlp", "optimizer": "sgd"}

    assert hparams_from_config(cfg, choices, include=["optimizer*"], exclude=["optimizer.momentum"]) == {
        "optimizer": "sgd",
        "optimizer.lr": 0.1,
    }
    assert "trainer.seed" not in hparams_from_config(cfg, choices, exclude=["trainer.*"])
    assert is_hparam_key("optimizer.lr", ["model"]) and is_hparam_key("model", ["model"])
    assert not is_hparam_key("logging.log_every_n_steps", ["model"])
    assert not is_hparam_key("hydra/launcher", ["hydra/launcher"])
    assert not is_hparam_key("optimizer.lr", ["model"], exclude=["optimizer.*"])


# ---------------------------------------------------------------- event files


def write_run(
    run_dir: Path,
    hparams: dict[str, Any],
    scalars: dict[str, list[float]],
    status: str | None,
) -> tuple[HParamsSession, SummaryWriter]:
    """A run as the trainer writes it: session start, scalars per step, end info unless `status` is None."""
    writer = SummaryWriter(log_dir=str(run_dir))
    session = HParamsSession(writer, run_dir, hparams)
    session.start()
    for tag, values in scalars.items():
        for step, value in enumerate(values, start=1):
            writer.add_scalar(tag, value, step)
    writer.flush()
    if status is not None:
        session.end(status, global_step=max(len(values) for values in scalars.values()))
        writer.close()
    return session, writer


def test_session_start_and_end_are_written_once_into_the_runs_own_event_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "0_optimizer.lr=0.1"
    hparams = {"model": "mlp", "optimizer.lr": np.float32(0.25), "trainer.seed": 1, "data.flip": True}
    session, _ = write_run(run_dir, hparams, {"val/acc": [0.5, 0.75], "train/loss": [1.0, 0.5]}, None)
    session.start()  # repeated calls are no-ops
    session.end("failed", global_step=2)
    session.end("completed", global_step=3)

    assert [path for path in run_dir.iterdir() if path.is_dir()] == []  # no sub-run
    events = hparams_events(run_dir)
    assert len(events[metadata.SESSION_START_INFO_TAG]) == 1
    assert len(events[metadata.SESSION_END_INFO_TAG]) == 1

    accumulator = read_events(run_dir)
    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    assert start.hparams["model"].string_value == "mlp"
    assert start.hparams["optimizer.lr"].number_value == 0.25
    assert start.hparams["trainer.seed"].number_value == 1
    assert start.hparams["data.flip"].bool_value is True
    assert start.group_name == "", "a session built without a name: TensorBoard names the row by its path"
    assert start.model_uri == str(run_dir.resolve())
    assert abs(start.start_time_secs - time.time()) < 60
    assert end.status == api_pb2.STATUS_FAILURE
    # running from the start (readable while it trains), then how it ended
    assert [point.value for point in accumulator.Scalars(TRIAL_STATE_TAG)] == [RUNNING_STATE, 3.0]
    assert accumulator.Scalars("val/acc")[-1].value == 0.75


@pytest.mark.parametrize(
    ("run_status", "session_status", "trial_state"),
    [
        ("completed", api_pb2.STATUS_SUCCESS, 0),
        ("stopped_early", api_pb2.STATUS_SUCCESS, 1),
        ("pruned", api_pb2.STATUS_FAILURE, 2),  # filtered out with the failed runs by TensorBoard's Status
        ("failed", api_pb2.STATUS_FAILURE, 3),
        ("interrupted", None, 4),  # no end info: the resumed run writes the one end info of the session
    ],
)
def test_run_status_maps_to_session_status_and_trial_state(
    tmp_path: Path, run_status: str, session_status: int | None, trial_state: int
) -> None:
    write_run(tmp_path, {"model": "mlp"}, {"val/acc": [0.5]}, run_status)

    accumulator = read_events(tmp_path)
    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME).get(metadata.SESSION_END_INFO_TAG)
    if session_status is None:
        assert content is None
    else:
        assert metadata.parse_session_end_info_plugin_data(content).status == session_status
    assert accumulator.Scalars(TRIAL_STATE_TAG)[-1].value == trial_state


def test_unknown_run_status_is_rejected(tmp_path: Path) -> None:
    session, writer = write_run(tmp_path, {"model": "mlp"}, {"val/acc": [0.5]}, None)
    with pytest.raises(ValueError, match="run status must be one of"):
        session.end("SUCCESS")
    writer.close()


def test_experiment_summary_declares_domains_and_metrics(tmp_path: Path) -> None:
    domains = {
        "model": ["mlp", "cnn"],
        "optimizer.lr": [0.1, 1],  # mixed int/float -> one float column
        "trainer.seed": [np.int64(1), 2],
        "data.flip": [True, False],
        "model.channels": [[8, 16], [16, 32]],
        "optimizer.weight_decay": Interval(1e-5, 1e-2),
        "trainer.max_epochs": Interval(1, 5),
    }
    write_experiment_declaration(tmp_path, domains, DEFAULT_METRICS)

    accumulator = read_events(tmp_path)
    content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.EXPERIMENT_TAG]
    infos = {info.name: info for info in metadata.parse_experiment_plugin_data(content).hparam_infos}

    def discrete(name: str) -> list:
        return [getattr(value, value.WhichOneof("kind")) for value in infos[name].domain_discrete.values]

    assert list(infos) == list(domains)
    assert infos["model"].type == api_pb2.DATA_TYPE_STRING and discrete("model") == ["cnn", "mlp"]
    assert infos["optimizer.lr"].type == api_pb2.DATA_TYPE_FLOAT64 and discrete("optimizer.lr") == [0.1, 1.0]
    assert discrete("trainer.seed") == [1, 2]
    assert infos["data.flip"].type == api_pb2.DATA_TYPE_BOOL
    assert discrete("model.channels") == ["[16, 32]", "[8, 16]"]
    assert infos["optimizer.weight_decay"].domain_interval.min_value == 1e-5
    assert infos["trainer.max_epochs"].domain_interval.max_value == 5
    metrics = metadata.parse_experiment_plugin_data(content).metric_infos
    assert [info.name.tag for info in metrics] == list(DEFAULT_METRICS)


# ---------------------------------------------------------------- the real TensorBoard server


def test_tensorboard_hparams_tab_shows_each_run_as_its_own_live_session(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    write_experiment_declaration(sweep_dir, {"model": ["mlp", "cnn"], "optimizer.lr": [0.1, 0.01]})
    same = {"model": "mlp", "optimizer.lr": 0.1, "trainer.seed": 1}
    runs = {
        "0_model=mlp": (
            same,
            "completed",
            {"val/acc": [0.5, 0.625], "val/loss": [1.0, 0.75], "train/epoch": [1, 2]},
        ),
        "1_model=mlp_seed": (
            same,
            "completed",
            {"val/acc": [0.25, 0.375], "val/loss": [2.0, 1.5], "train/epoch": [1, 2]},
        ),
        "2_model=cnn": (
            {"model": "cnn", "optimizer.lr": 0.01, "trainer.seed": 1},
            "failed",
            {"val/acc": [0.125], "val/loss": [3.0], "train/epoch": [1]},
        ),
    }
    for name, (hparams, status, scalars) in runs.items():
        write_run(sweep_dir / name, hparams, scalars, status)

    url = start_tensorboard(sweep_dir)

    columns = wait_for(lambda: experiment(url).get("hparamInfos"), what="the experiment")
    assert [column["name"] for column in columns] == ["model", "optimizer.lr"]
    assert [metric["name"]["tag"] for metric in experiment(url)["metricInfos"]] == list(DEFAULT_METRICS)

    groups = wait_for(lambda: len(session_groups(url)) == 3 and session_groups(url), what="3 sessions")
    sessions = {group["sessions"][0]["name"]: group for group in groups}
    assert all(len(group["sessions"]) == 1 for group in groups)  # identical hparams are not merged
    assert set(sessions) == set(runs)
    for name, (hparams, status, scalars) in runs.items():
        group, session = sessions[name], sessions[name]["sessions"][0]
        assert session["status"] == ("STATUS_SUCCESS" if status == "completed" else "STATUS_FAILURE")
        assert session["modelUri"] == str((sweep_dir / name).resolve())
        assert group["hparams"]["model"] == hparams["model"]
        expected = {tag: values[-1] for tag, values in scalars.items()}
        assert metric_values(session) == {**expected, TRIAL_STATE_TAG: TRIAL_STATES[status]}
        assert metric_values(session)["val/acc"] == last_scalar(sweep_dir / name, "val/acc")

    # A run still training: no end info yet (status "Unknown"), and each new scalar shows up live.
    _, writer = write_run(sweep_dir / "3_live", {"model": "cnn", "optimizer.lr": 0.1}, {"val/acc": [0.25]}, None)

    def live_session() -> dict[str, Any] | None:
        found = [g["sessions"][0] for g in session_groups(url) if g["sessions"][0]["name"] == "3_live"]
        return found[0] if found else None

    assert wait_for(live_session, what="the live session")["status"] == "STATUS_UNKNOWN"
    writer.add_scalar("val/acc", 0.875, 2)
    writer.flush()
    wait_for(lambda: metric_values(live_session() or {}).get("val/acc") == 0.875, what="the new val/acc")
    writer.close()


# ---------------------------------------------------------------- the HParams Trial ID


@pytest.mark.slow
def test_trial_id_is_the_runs_short_name_whatever_folder_tensorboard_opened(train: TrainCLI) -> None:
    result = train("-m", *TINY, "trainer.max_epochs=1", "optimizer.lr=0.01,0.004627")
    assert result.returncode == 0, result.stdout + result.stderr
    (sweep_dir,) = train.output_root.glob("multirun/*/*")
    run_names = sorted(path.name for path in sweep_dir.iterdir() if path.is_dir() and path.name[0].isdigit())
    # TensorBoard's run list shows the directories: named by the same short form, the full overrides in .hydra/
    assert run_names == ["0_lr=0.01", "1_lr=4.6e-3"]
    assert "optimizer.lr=0.004627" in (sweep_dir / run_names[1] / ".hydra" / "overrides.yaml").read_text()
    date, clock = sweep_dir.parent.name, sweep_dir.name.replace("-", "")
    stamp = f"{date[5:7]}{date[8:10]}-{clock}"
    # Only the swept key, by its last part, rounded; the fixed overrides (TINY) are left out.
    expected = sorted([f"{stamp} #0 lr=0.01", f"{stamp} #1 lr=4.6e-3"])
    # The sweep's first "watch it live" line names the sweep folder, not one run's.
    first = next(line for line in result.stdout.splitlines() if "watch it live" in line)
    assert first.startswith("sweep directory: ") and Path(first.rsplit(" ", 1)[1]).name == sweep_dir.name, first

    for logdir in (sweep_dir, train.output_root):
        url = start_tensorboard(logdir)
        groups = wait_for(lambda url=url: len(session_groups(url)) == 2 and session_groups(url), what="2 rows")
        assert sorted(group["name"] for group in groups) == expected
