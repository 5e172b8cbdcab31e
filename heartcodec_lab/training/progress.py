"""The training progress bar: optimizer steps of the run, loss and how much faster than real time it learns.

``step 120/2000  epoch 3  loss 0.412  x14.2 realtime  0:01:10 < 0:18:20`` on rank 0. Runs are limited
by steps (``trainer.max_steps``), so the bar counts steps over the whole run; an epoch is only a
number of crops (``data.samples_per_epoch``) and is shown as a plain count. "x realtime" is seconds
of training audio (all ranks) per second of training-step wall time.
"""

from __future__ import annotations

import time

from lightning.pytorch.callbacks.progress import ProgressBar
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from heartcodec_lab.audio.rates import SAMPLE_RATE


class StepProgressBar(ProgressBar):
    def __init__(self, console: Console | None = None):
        super().__init__()
        self._enabled = True
        self._console = console
        self._progress: Progress | None = None
        self._task = None
        self._audio_seconds = 0.0
        self._step_seconds = 0.0
        self._batch_start = 0.0

    # -- Lightning's progress-bar interface ------------------------------------------------
    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def print(self, *args, **kwargs) -> None:
        (self._progress.console if self._progress else Console()).print(*args, **kwargs)

    # -- what is shown -----------------------------------------------------------------------
    def total_steps(self, trainer) -> int | None:
        if trainer.max_steps and trainer.max_steps > 0:
            return int(trainer.max_steps)
        total = trainer.estimated_stepping_batches
        return int(total) if total != float("inf") else None

    def realtime_factor(self) -> float | None:
        return self._audio_seconds / self._step_seconds if self._step_seconds > 0 else None

    def describe(self, trainer, status: str = "") -> str:
        parts = [f"epoch {trainer.current_epoch}"]
        loss = trainer.progress_bar_metrics.get("train/loss")
        if loss is not None:
            parts.append(f"loss {float(loss):.4g}")
        factor = self.realtime_factor()
        if factor is not None:
            parts.append(f"x{factor:.1f} realtime")
        if status:
            parts.append(status)
        return "  ".join(parts)

    def _update(self, trainer, status: str = "") -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=trainer.global_step, info=self.describe(trainer, status))

    # -- hooks ----------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        if not self.is_enabled:
            return
        self._progress = Progress(
            TextColumn("step {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("<"),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._task = self._progress.add_task(
            "train", total=self.total_steps(trainer), completed=trainer.global_step, info=self.describe(trainer)
        )
        self._progress.start()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._step_seconds += time.perf_counter() - self._batch_start
        audio = batch["audio"] if isinstance(batch, dict) else batch[0]
        self._audio_seconds += audio.shape[0] * audio.shape[-1] / SAMPLE_RATE * trainer.world_size
        self._update(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._update(trainer, "validating")

    def on_validation_end(self, trainer, pl_module) -> None:
        self._update(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._stop(trainer)

    def _stop(self, trainer) -> None:
        if self._progress is not None:
            self._update(trainer)
            self._progress.stop()
            self._progress = None
