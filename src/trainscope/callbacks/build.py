"""The one way a callback enters a run: `build_callbacks(cfg)` builds every callback of a run from its config.

In this order (the order hooks run in; the names key each callback's state in checkpoints):

0. the fine-tuning schedule, keyed `finetune`, when `finetune.freeze` or `finetune.lora` is set
   (`trainscope.callbacks.freezing`): first, so every other callback sees the epoch's trainable parameters;
1. the `callbacks` group: checkpointing, early stopping, the learning-rate logger, the health checks and any
   `+callbacks.<name>._target_=...` of the user's (a null entry turns that one off);
2. the TensorBoard loggers the `logging` group switches on, keyed `monitor/<name>`: `logging=minimal` writes the
   loop's scalars only, `default` adds text, images, the task's panels (a classification's confusion matrix, a
   regression's scatter) and occasional histograms, `full` writes everything more often (and the model graph);
   any switch can be flipped on the command line. Which panels fit is the task's call (`Task.panels`);
3. the `metrics.csv` writer, keyed `metrics_csv` (every run has one: `trainscope.core.metrics_csv`);
4. the Ctrl-C/SIGTERM handler, keyed `stop_on_signal`;
5. the Optuna pruning callback, keyed `optuna_pruning`, when the run is a sweep's trial
   (`trainscope.trial.current_trial()`): no config of the app names it;
6. the checkpoint callbacks of step 1, moved last: a checkpoint claims a step, so everything logged at that step
   (and every callback state it saves) must be complete and flushed before it is written. Otherwise a kill
   just after the write loses those points for good: the resumed run starts after that step.

The switches are typed, with their defaults and ranges, in `trainscope.config.groups.logging`.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from trainscope.callbacks.checkpoint import CheckpointCallback
from trainscope.callbacks.freezing import Freezing
from trainscope.callbacks.metrics_csv import MetricsCsv
from trainscope.callbacks.stop_on_signal import StopOnSignal
from trainscope.config.groups.finetune import FinetuneConfig
from trainscope.config.groups.logging import LoggingConfig
from trainscope.core.callback import Callback, CallbackList
from trainscope.core.errors import ConfigError
from trainscope.tasks import Task, build_task
from trainscope.tensorboard.histograms import WeightHistograms
from trainscope.tensorboard.system import CudaMemoryLogger
from trainscope.tensorboard.text import ModelGraph, RunText
from trainscope.trial import current_trial

STOP_ON_SIGNAL = "stop_on_signal"
METRICS_CSV = "metrics_csv"
OPTUNA_PRUNING = "optuna_pruning"
FINETUNE = "finetune"


def build_callbacks(
    cfg: DictConfig,
    task: Task | None = None,
    stop_on_signal: StopOnSignal | None = None,
    model: nn.Module | None = None,
) -> CallbackList:
    """Every callback of the run `cfg` describes, in hook order; `task` (built from `cfg` when not given) chooses
    its TensorBoard panels; `stop_on_signal`: the one installed when the run started, if any; `model` is the one
    the fine-tuning callbacks act on (none: they are left out)."""
    configured = _configured_callbacks(cfg.get("callbacks"))
    checkpoints = {name: callback for name, callback in configured.items() if isinstance(callback, CheckpointCallback)}
    return CallbackList(
        {
            **_finetuning(cfg, model),
            **{name: callback for name, callback in configured.items() if name not in checkpoints},
            **_tensorboard_loggers(cfg, task if task is not None else build_task(cfg)),
            METRICS_CSV: MetricsCsv(),
            STOP_ON_SIGNAL: stop_on_signal if stop_on_signal is not None else StopOnSignal(),
            **_trial_pruning(),
            **checkpoints,
        }
    )


def _configured_callbacks(callbacks_cfg: DictConfig | None) -> dict[str, Callback]:
    """Instantiate each entry of the `callbacks` dict; a null entry turns that callback off."""
    callbacks: dict[str, Callback] = {}
    for name, callback_cfg in (callbacks_cfg or {}).items():
        if callback_cfg is None:
            continue
        if "_target_" not in callback_cfg:
            raise ConfigError(f"callbacks.{name} needs a _target_ naming a Callback class")
        callback = instantiate(callback_cfg)
        if not isinstance(callback, Callback):
            raise ConfigError(
                f"callbacks.{name}._target_={callback_cfg._target_} is not a trainscope.engine.callbacks.Callback"
            )
        callbacks[name] = callback
    return callbacks


def _tensorboard_loggers(cfg: DictConfig, task: Task) -> dict[str, Callback]:
    """The TensorBoard loggers `cfg.logging` switches on, keyed `monitor/<name>` (kept for old checkpoints)."""
    logging = LoggingConfig.from_config(cfg.logging)
    loggers: dict[str, Callback] = {"monitor/memory": CudaMemoryLogger()}
    if logging.text:
        loggers["monitor/text"] = RunText(cfg)
    if logging.graph:
        loggers["monitor/graph"] = ModelGraph()
    if logging.histograms_every_n_epochs > 0:
        loggers["monitor/histograms"] = WeightHistograms(every_n_epochs=logging.histograms_every_n_epochs)
    return {**loggers, **task.panels(logging)}


def _finetuning(cfg: DictConfig, model: nn.Module | None) -> dict[str, Callback]:
    """The freezing schedule of `finetune.freeze` on `model`, when both are there."""
    config = FinetuneConfig.from_config(cfg.get("finetune"))
    if model is None or (config.freeze is None and config.lora is None):
        return {}
    return {FINETUNE: Freezing(config, model)}


def _trial_pruning() -> dict[str, Callback]:
    """The Optuna pruning callback when this run is a sweep's trial, else nothing."""
    trial = current_trial()
    if trial is None:
        return {}
    from trainscope.callbacks.pruning import OptunaPruningCallback  # imports optuna: only inside a sweep

    return {OPTUNA_PRUNING: OptunaPruningCallback(trial)}
