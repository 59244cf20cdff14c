"""Terminal progress: a tqdm bar per epoch on a TTY, a few plain lines otherwise (logs, CI, pipes)."""

from __future__ import annotations

import sys

from tqdm import tqdm


class EpochProgress:
    """Shows how far the current epoch is, with the latest loss and task metrics read by the loop."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.interactive = enabled and sys.stdout.isatty()
        self._bar: tqdm | None = None
        self._total = 0
        self._epoch = 0
        self._next_plain_report = 0.25

    def start_epoch(self, epoch: int, max_epochs: int, total_batches: int, done_batches: int = 0) -> None:
        self._epoch, self._total = epoch, total_batches
        self._next_plain_report = 0.25
        if self.interactive:
            self._bar = tqdm(
                total=total_batches,
                initial=done_batches,
                desc=f"epoch {epoch + 1}/{max_epochs}",
                leave=False,
                dynamic_ncols=True,
            )

    def advance(self, batches_done: int, step_metrics: dict[str, float] | None) -> None:
        """Called every step; only touches the terminal when there is something new to show."""
        if self._bar is not None:
            self._bar.n = batches_done
            if step_metrics is not None:
                self._bar.set_postfix(_short(step_metrics), refresh=False)
                self._bar.refresh()
        elif self.enabled and step_metrics is not None and batches_done >= self._next_plain_report * self._total:
            self._next_plain_report += 0.25
            values = " ".join(f"{key}={value}" for key, value in _short(step_metrics).items())
            print(f"epoch {self._epoch + 1} [{batches_done}/{self._total}] {values}", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _short(metrics: dict[str, float]) -> dict[str, str]:
    """The loss and the task's training metrics of a logging step (`loss`, `acc`; `rmse`, ...)."""
    return {
        key.removeprefix("train/").removesuffix("_step"): f"{value:.4g}"
        for key, value in metrics.items()
        if key.startswith("train/") and key.endswith("_step")
    }
