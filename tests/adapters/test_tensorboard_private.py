"""The private names of TensorBoard's writers that trainscope relies on are where
`trainscope.adapters.tensorboard_private` reaches for them; events are read back with TensorBoard's own reader.

After an upgrade that moved one, a test here fails with one `PrivateNameMoved` message naming the private name
and the installed version.
"""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from trainscope.adapters import tensorboard_private
from trainscope.adapters.private_names import PrivateNameMoved


def test_every_private_name_is_where_the_adapter_reaches_for_it(tmp_path: Path) -> None:
    tensorboard_private.check()
    writer = SummaryWriter(log_dir=str(tmp_path / "run"))
    summary = Summary(value=[Summary.Value(tag="written/directly", simple_value=0.5)])
    tensorboard_private.event_file_writer(writer).add_summary(summary, 3)
    assert any(tensorboard_private.is_event_writer_thread(thread) for thread in threading.enumerate())
    assert not tensorboard_private.is_event_writer_thread(threading.current_thread())
    writer.close()
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    assert [(event.step, event.value) for event in events.Scalars("written/directly")] == [(3, 0.5)]

    silent = tensorboard_private.SilentSummaryWriter(log_dir=str(tmp_path / "silent"))
    silent.add_scalar("loss", 1.0, 1)
    silent.close()
    assert not (tmp_path / "silent").exists()  # nothing written, not even the directory


def test_a_moved_private_name_is_one_error_naming_it_and_the_installed_version() -> None:
    with pytest.raises(PrivateNameMoved) as raised:
        tensorboard_private.event_file_writer(object())  # type: ignore[arg-type]  # a writer without the method
    message = str(raised.value)
    torch_version = importlib.metadata.version("torch")
    assert message.startswith(f"builtins.object._get_file_writer is gone from torch {torch_version}: ")
    assert "trainscope.adapters.tensorboard_private" in message
