"""TensorBoard output: the run's one writer, HParams sessions, and the loggers the `logging` switches select.

Every module of this package imports TensorBoard after this file has run, so TensorBoard's file layer is
imported here first, without the cloud clients it would otherwise load (`_import_local_file_layer`).
"""

from __future__ import annotations

import sys

_CLOUD_CLIENTS = ("botocore", "boto3", "fsspec")


def _import_local_file_layer() -> None:
    """Import TensorBoard's file layer (`tensorboard.compat.tensorflow_stub.io.gfile`) with boto3 and fsspec hidden.

    That module imports boto3 and fsspec whenever they are installed, to read and write `s3://` and other remote
    log directories: ~170 ms for boto3 alone, paid by every run. A run directory is always a local folder, so the
    layer is imported as if neither were installed (its `S3_ENABLED` and `FSSPEC_ENABLED` stay False). Only the
    import is affected: a later `import boto3` anywhere in the process works as usual, and where either is already
    imported it is left alone.
    """
    hidden = [name for name in _CLOUD_CLIENTS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        import tensorboard.compat.tensorflow_stub.io.gfile  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


_import_local_file_layer()
