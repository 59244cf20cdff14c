"""Every private name of the TensorBoard writing stack (tensorboard and torch.utils.tensorboard) trainscope relies on.

- `tensorboard.summary.writer.event_file_writer._AsyncWriterThread`: the writer's thread, whose error (a full disk)
  the run reports once, not also as a thread traceback;
- `torch.utils.tensorboard.SummaryWriter._get_file_writer` (torch's): the event-file writer every `add_*` ends in,
  for image summaries trainscope encodes itself, HParams records, and a writer that keeps nothing.

`check()` and tests/adapters/test_tensorboard_private.py say which of them an upgrade moved.
"""

from __future__ import annotations

import threading
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from trainscope.adapters.private_names import PrivateNames

TENSORBOARD = PrivateNames("tensorboard", __name__)
TORCH = PrivateNames("torch", __name__)

_AsyncWriterThread = TENSORBOARD.imported("tensorboard.summary.writer.event_file_writer", "_AsyncWriterThread")
_GET_FILE_WRITER = "_get_file_writer"


def is_event_writer_thread(thread: threading.Thread | None) -> bool:
    """Whether `thread` is TensorBoard's background event-file writer."""
    return isinstance(thread, _AsyncWriterThread)


def event_file_writer(writer: SummaryWriter) -> Any:
    """The writer's event-file writer (torch creates it again after `close()`)."""
    return TORCH.attribute(writer, _GET_FILE_WRITER)()


class _DiscardingFileWriter:
    """Takes every event a `SummaryWriter` produces and keeps none: no file is ever created."""

    def add_event(self, *args: Any, **kwargs: Any) -> None: ...
    def add_summary(self, *args: Any, **kwargs: Any) -> None: ...
    def add_graph(self, *args: Any, **kwargs: Any) -> None: ...
    def add_onnx_graph(self, *args: Any, **kwargs: Any) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def reopen(self) -> None: ...


class SilentSummaryWriter(SummaryWriter):
    """A SummaryWriter that writes nothing: every `add_*` of torch's writer ends in `_get_file_writer()`."""

    def _get_file_writer(self) -> Any:
        if self.file_writer is None:
            self.file_writer = _DiscardingFileWriter()
        return self.file_writer


def check() -> None:
    """Raise PrivateNameMoved for the first private name above that these versions no longer have."""
    TORCH.attribute(SummaryWriter, _GET_FILE_WRITER)
