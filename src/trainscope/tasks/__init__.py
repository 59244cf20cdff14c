"""Tasks: what the problem is (loss, metrics, predictions, the monitored metric, panels), one module per task.

`conf/task/<name>.yaml` names the task's class as `_target_`; `build_task(cfg)` builds it.
"""

from trainscope.tasks.base import Evaluator, Monitor, SumsEvaluator, Task, batch_count
from trainscope.tasks.build import build_task
from trainscope.tasks.classification import Classification
from trainscope.tasks.custom import Custom
from trainscope.tasks.language_modeling import LanguageModeling
from trainscope.tasks.multilabel import MultiLabel
from trainscope.tasks.regression import Regression

__all__ = [
    "Classification",
    "Custom",
    "Evaluator",
    "LanguageModeling",
    "Monitor",
    "MultiLabel",
    "Regression",
    "SumsEvaluator",
    "Task",
    "batch_count",
    "build_task",
]
