"""What kind of targets a task needs from the data, and the one-line error when the data holds another kind.

Each task names the kind it needs (`trainscope.tasks.Task.targets`; the kinds are declared with the typed data
group, `trainscope.config.groups.data.TARGET_KINDS`); the data builders deliver targets of that kind (a table's
column as class indices or floats) or refuse, before anything trains.
"""

from __future__ import annotations

from trainscope.config.groups.data import ANY, CLASS, FLOAT, MULTI_HOT, TARGET_KINDS, TOKENS
from trainscope.core.errors import ConfigError

__all__ = ["ANY", "CLASS", "FLOAT", "MULTI_HOT", "TARGET_KINDS", "TOKENS", "check_kind", "target_mismatch"]

TASK_OF_KIND = {
    CLASS: "classification",
    FLOAT: "regression",
    MULTI_HOT: "multilabel",
    TOKENS: "language_modeling",
    ANY: "custom",
}
"""The built-in task that needs each kind, for the messages."""

NEEDS = {
    CLASS: "integer class targets",
    FLOAT: "numeric targets",
    MULTI_HOT: "0/1 label targets",
    TOKENS: "next-token targets",
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
