"""Rich progress for training: one bar per phase with epoch, loss and images/s."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class RichReporter:
    """Implements :class:`bench.train.engine.Reporter` on a rich progress display (stderr)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.fields[phase]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}"), TextColumn("{task.fields[loss]}"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=self.console, transient=False,
        )
        self.task: TaskID | None = None
        self.epochs = 0
        self.steps_per_epoch = 1
        self.advanced = 0
        """Steps advanced since the last epoch ended: a phase that never calls :meth:`advance` (GAN training
        reports whole epochs) moves the bar by an epoch's steps at each :meth:`end_epoch`."""

    def __enter__(self) -> "RichReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def start_phase(self, name: str, epochs: int, steps_per_epoch: int) -> None:
        # loss and rate show nothing until an epoch has measured them: never a placeholder such as "- img/s"
        self.task = self.progress.add_task(name, total=max(epochs * steps_per_epoch, 1), phase=name,
                                           epoch=f"0/{epochs}", loss="", rate="")
        self.epochs, self.steps_per_epoch, self.advanced = epochs, steps_per_epoch, 0

    def advance(self, steps: int, images: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, steps)
            self.advanced += steps

    def end_epoch(self, name: str, epoch: int, loss: float, images_per_s: float) -> None:
        if self.task is None:
            return
        if not self.advanced:
            self.progress.advance(self.task, self.steps_per_epoch)
        self.advanced = 0
        fields: dict[str, Any] = {"epoch": f"{epoch}/{self.epochs}", "loss": f"loss {loss:.4f}"}
        if images_per_s > 0:
            fields["rate"] = f"{images_per_s:.0f} img/s" if images_per_s >= 10 else f"{images_per_s:.2g} img/s"
        self.progress.update(self.task, **fields)

    def end_phase(self) -> None:
        if self.task is None:
            return
        task = self.progress.tasks[-1]
        self.progress.update(self.task, completed=task.total)
