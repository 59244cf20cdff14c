"""What kind of targets a task needs from the data, and the one-line error when the data holds another kind.

Each task names the kind it needs (`trainscope.tasks.Task.targets`); the data builders deliver targets of that
kind (a table's column as class indices or floats) or refuse, before anything trains.
"""

from __future__ import annotations

from trainscope.core.errors import ConfigError

CLASS = "class"  # int64 class indices [B]
FLOAT = "float"  # float32 values [B, targets]
MULTI_HOT = "multi_hot"  # float32 0/1 labels [B, labels]
ANY = "any"  # whatever the dataset returns (task=custom: the user's loss decides)
TARGET_KINDS = (CLASS, FLOAT, MULTI_HOT, ANY)

TASK_OF_KIND = {CLASS: "classification", FLOAT: "regression", MULTI_HOT: "multilabel", ANY: "custom"}
"""The built-in task that needs each kind, for the messages."""

NEEDS = {
    CLASS: "integer class targets",
    FLOAT: "numeric targets",
    MULTI_HOT: "0/1 label targets",
    ANY: "targets",
}


def check_kind(kind: str) -> str:
    if kind not in TARGET_KINDS:
        raise ValueError(f"targets must be one of {TARGET_KINDS}, got {kind!r}")
    return kind


def target_mismatch(wanted: str, where: str, holds: str, fits: str | None) -> ConfigError:
    """`task=classification needs integer class targets; data.target=progression holds floats (use task=regression)`."""
    hint = f" (use task={TASK_OF_KIND[fits]})" if fits is not None and fits != wanted else ""
    return ConfigError(f"task={TASK_OF_KIND[wanted]} needs {NEEDS[wanted]}; {where} holds {holds}{hint}")
