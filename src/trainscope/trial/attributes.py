"""Every attribute trainscope stores on an Optuna study or its trials, named once.

The spelling says who reads it:

- plain names (`run_dir`, `fail_reason`, `host`, `status`, `fail_reason/trial_<n>`) are user attributes meant for
  people: optuna-dashboard and `study.trials_dataframe()` show them next to the trial's values;
- `trainscope:`-prefixed names are bookkeeping between trainscope's own processes (who owns a trial, whether
  it was interrupted, the sweep's pruner, metrics and search space), kept apart from an app's own attributes;
- `failed_trial` is Optuna's own: `RetryHeartbeatStaleTrialCallback` sets it on the retry of a failed trial.

Studies outlive releases: a renamed attribute would orphan every study a user already has, so these strings stay.
"""

# ---------------------------------------------------------------- trial user attributes (shown to people)
RUN_DIR_ATTR = "run_dir"
"""The job's run directory, set when the job opens its trial and again when it ends."""
FAIL_REASON_ATTR = "fail_reason"
"""Why a FAIL trial failed (its run's reason, `interrupted: ...`, `surplus: ...`)."""
HOST_ATTR = "host"
"""The machine that claimed the trial (its run directory lies there)."""
STATUS_ATTR = "status"
"""The run's `metrics.json` status (`completed`, `pruned`, `failed`, `interrupted`, ...)."""

# ---------------------------------------------------------------- trial system attributes (bookkeeping)
OWNER_ATTR = "trainscope:owner"
"""The process that claimed the trial (`process_identity`): a RUNNING trial whose owner is gone was abandoned."""
INTERRUPTED_ATTR = "trainscope:interrupted"
"""A FAIL that is not the trial's fault (its sweep was stopped or killed): not counted in `n_trials`, retried once."""
SURPLUS_ATTR = "trainscope:surplus"
"""A trial asked once the study already had `n_trials` (two processes asked at once): failed, never counted."""
RETRY_OF_ATTR = "failed_trial"
"""Optuna's own: on a retry, the number of the trial it retries."""

# ---------------------------------------------------------------- study user attributes
PRUNER_STUDY_ATTR = "trainscope:pruner"
"""The sweep's `hydra/sweeper/pruner` config (`{_target_: ..., kwargs}`): each job rebuilds the pruner from it."""
METRICS_STUDY_ATTR = "trainscope:optimized_metric"
"""The objective names, in order (one per direction)."""
MONITOR_STUDY_ATTR = "trainscope:pruning_metric"
"""The metric reported to the pruner each epoch (None: nothing is reported)."""
SEARCH_SPACE_STUDY_ATTR = "trainscope:search_space"
"""Each sampled parameter's domain: a sweep joining the study with another search space is refused."""


def fail_reason_study_attr(trial_number: int) -> str:
    """The study user attribute repeating a failed trial's reason, so the dashboard's study page lists failures."""
    return f"fail_reason/trial_{trial_number}"
