"""The ``tensorboard`` logger: a run's configuration, epoch metrics, summary and plots as TensorBoard events.

Events go to ``RUN/tensorboard/``; a resumed run continues the same event stream (the interrupted attempt's
events after the last checkpoint are purged). Tags are the harness's metric names: ``train/...`` per epoch,
``curve/jaccard_scored`` or ``curve/jaccard_holdout`` (and accuracy) for the training curve, named for the images
it is computed on, and ``summary/...`` and ``plots/...`` at the last epoch's step, where they belong on the time
axis. Needs ``tensorboard`` (``pip install "skinbench[tensorboard]"``); without it ``--log tensorboard`` stops the
run before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.api import Logger, LoggerUnavailable, OptionsMeta, TrackedRun, hookimpl


class TensorBoardLogger(Logger):
    """Writes TensorBoard events into the run folder."""

    def __init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LoggerUnavailable('tensorboard is not installed: pip install "skinbench[tensorboard]"') from None
        self._writer_class = SummaryWriter
        self.writer: Any = None
        self.step = 0
        """The last epoch logged: where the summary and the plots go."""

    def start(self, run: TrackedRun) -> None:
        self.step = run.start_step
        self.writer = self._writer_class(log_dir=str(run.folder / "tensorboard"),
                                         purge_step=run.start_step + 1 if run.resumed else None)
        rows = "\n".join(f"| {k} | {v} |" for k, v in run.config.items())
        self.writer.add_text("config", f"run `{run.run_id}`\n\n| setting | value |\n| --- | --- |\n{rows}",
                             global_step=run.start_step)

    def log_epoch(self, step: int, metrics: dict[str, float], phase: str) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.step = max(self.step, step)
        self.writer.flush()

    def finish(self, summary: dict[str, Any], artefacts: list[Path]) -> None:
        for key, value in summary.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"summary/{key}", value, self.step)
        from PIL import Image

        for path in artefacts:
            if path.suffix == ".png" and path.exists():
                image = np.asarray(Image.open(path).convert("RGB"))
                self.writer.add_image(f"plots/{path.stem}", image, global_step=self.step, dataformats="HWC")
        self.writer.close()


@hookimpl
def bench_register_loggers(register):
    register("tensorboard", TensorBoardLogger, description="TensorBoard event files in RUN/tensorboard/",
             meta=OptionsMeta())
