"""A rich progress bar for the bulk tokenizer: files, hours of audio, ETA and x-realtime."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text


class _RealtimeColumn(ProgressColumn):
    """Audio seconds done per wall-clock second."""

    def render(self, task) -> Text:
        elapsed = task.elapsed or 0.0
        speed = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{speed:6.1f}x realtime", style="cyan")


class TokenizeProgress:
    """Progress over audio seconds (so ETA follows audio length, not file count)."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None
        self.files_total = 0
        self.files_done = 0
        self.failed = 0
        self.t0 = time.perf_counter()

    def start(self, files_total: int, seconds_total: float) -> None:
        self.files_total, self.t0 = files_total, time.perf_counter()
        if not self.enabled or files_total == 0:
            return
        self._progress = Progress(
            TextColumn("[bold]tokenize"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.fields[hours]}"),
            TimeRemainingColumn(),
            _RealtimeColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "tokenize",
            total=max(seconds_total, 1e-9),
            files=self._files_text(),
            hours=self._hours_text(0.0, seconds_total),
        )
        self._seconds_total = seconds_total

    def _files_text(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.files_done}/{self.files_total} files{failed}"

    @staticmethod
    def _hours_text(done: float, total: float) -> str:
        return f"{done / 3600:.2f}/{total / 3600:.2f} h"

    def file_done(self, seconds: float, ok: bool = True) -> None:
        self.files_done += 1
        self.failed += int(not ok)
        if self._progress is None:
            return
        self._progress.advance(self._task, seconds)
        done = self._progress.tasks[0].completed
        self._progress.update(self._task, files=self._files_text(), hours=self._hours_text(done, self._seconds_total))

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
