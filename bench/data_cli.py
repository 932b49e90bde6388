"""``bench data download isic2017`` (official archives, resumable) and ``bench data check D`` (validate a dataset)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from bench.errors import BenchError, DataError


def register(cli: click.Group, host_of) -> None:
    @cli.group()
    def data() -> None:
        """Check datasets."""

    @data.command("download")
    @click.argument("name", type=click.Choice(["isic2017"]))
    @click.option("--root", required=True, type=click.Path(path_type=Path), help="Folder to download into.")
    @click.option("--splits", default="train,val,test", show_default=True, help="Which splits' archives.")
    @click.option("--base-url", default=None, help="Where the archives are (default: the ISIC challenge bucket).")
    @click.option("--remove-archives", is_flag=True, help="Delete each zip once it is extracted.")
    def download(name: str, root: Path, splits: str, base_url: str | None, remove_archives: bool) -> None:
        """Download and extract the official ISIC 2017 Part 1 archives into ROOT (resumes if interrupted)."""
        from bench.data import download as dl

        with _DownloadBar() as bar:
            dl.download_isic2017(root, dl.parse_splits(splits), base_url or dl.ISIC2017_BASE_URL, bar,
                                 keep_archives=not remove_archives, log=click.echo)
        click.echo(f"done: use --data isic2017:{root}")

    @data.command("check")
    @click.argument("spec")
    @click.pass_context
    def check(ctx, spec: str) -> None:
        """Validate every pair of every split of SPEC (e.g. isic2017:/data); exit 1 when any is bad."""
        from bench.build import load_dataset

        try:
            dataset = load_dataset(host_of(ctx), spec, "bench data check")
        except DataError as exc:
            raise BenchError(f"layout problem: {exc}") from None
        problems = 0
        click.echo(f"{dataset.spec}: splits {', '.join(dataset.splits)}")
        for name, split in dataset.splits.items():
            sizes: Counter[tuple[int, int]] = Counter()
            errors = []
            lesion = []
            for i in range(len(split)):
                try:
                    image, mask = split.load(i)
                except DataError as exc:
                    errors.append(str(exc))
                    continue
                sizes[image.shape[:2]] += 1
                lesion.append(float(mask.mean()))
            common = ", ".join(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common(3))
            more = f", and {len(sizes) - 3} other sizes" if len(sizes) > 3 else ""
            area = f"; lesion area {100 * min(lesion):.1f}-{100 * max(lesion):.1f}% of the image" if lesion else ""
            click.echo(f"  {name}: {len(split)} pairs, {len(errors)} bad; sizes (HxW) {common or '-'}{more}{area}")
            for message in errors:
                click.echo(f"    problem: {message}")
            problems += len(errors)
        if problems:
            raise click.exceptions.Exit(1)


class _DownloadBar:
    """A rich progress bar per archive: bytes, speed, time left (on stderr)."""

    def __enter__(self) -> "_DownloadBar":
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(),
                                 console=Console(stderr=True, soft_wrap=True))
        self.progress.start()
        self.task: Any = None
        return self

    def start(self, name: str, total: int | None, done: int) -> None:
        self.task = self.progress.add_task(name, total=total, completed=done)

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def finish(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        self.progress.stop()
