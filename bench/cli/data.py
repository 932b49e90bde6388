"""``bench data download NAME`` (official archives, resumable) and ``bench data check D`` (validate a dataset)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from bench.cli.common import overwrite_option, refuse_to_replace, host_of
from bench.data.download import MANUAL, SOURCES

from bench.errors import BenchError, DataError


@click.group(short_help="Download and check datasets.")
def data() -> None:
    """Download official dataset archives (ISIC 2017, ISIC 2018, HAM10000), and check any dataset's pairs before
    training on them."""

@data.command("download", short_help="Download a dataset's archives, extract them.")
@click.argument("name", type=click.Choice(sorted([*SOURCES, *MANUAL])))
@click.option("--root", required=True, type=click.Path(path_type=Path), help="Folder to download into.")
@click.option("--splits", default=None,
              help="Which splits' archives, comma-separated (default all: train,val,test for ISIC; all for "
                   "HAM10000, whose split is made from its metadata).")
@click.option("--base-url", default=None,
              help="A mirror serving the archives as BASE/NAME (default: the official host of each dataset).")
@click.option("--remove-archives", is_flag=True, help="Delete each archive once it is extracted.")
@click.option("--checksums", default=None, type=click.Path(path_type=Path),
              help="JSON file of archive name -> MD5 or SHA-256 (default: the official archives' published ones).")
@click.option("--max-extract-gb", default=64.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Refuse an archive that expands to more than this.")
@click.option("--max-members", default=200_000, show_default=True, type=click.IntRange(min=1),
              help="Refuse an archive with more members than this.")
def download(name: str, root: Path, splits: str | None, base_url: str | None, remove_archives: bool,
             checksums: Path | None, max_extract_gb: float, max_members: int) -> None:
    """Download, verify (the published MD5 or SHA-256) and extract NAME's official archives into ROOT, resuming
    if interrupted: isic2017 (ISIC 2017 Part 1, ISIC bucket), isic2018 (ISIC 2018 Task 1, ISIC bucket), ham10000
    (images, lesion masks and metadata, Harvard Dataverse). ph2 has no download (a RAR archive): the error says
    how to obtain it."""
    from bench.data import download as dl
    from bench.data.archive import Limits

    chosen = dl.parse_splits(splits, name)
    table = dl.read_checksums(checksums) if checksums else None
    with _DownloadBar() as bar:
        dl.download(name, root, chosen, base_url, bar, keep_archives=not remove_archives, log=click.echo,
                    checksums=table, limits=Limits(int(max_extract_gb * 2**30), max_members))
    click.echo(f"done: use --data {name}:{root}")

@data.command("check", short_help="Validate a dataset; find near-duplicates.")
@click.argument("spec")
@click.option("--duplicate-threshold", default=0.95, show_default=True, type=click.FloatRange(0, 1),
              help="Thumbnail correlation at which two images of different splits count as near-copies.")
@click.option("--exclude-out", default=None, type=click.Path(path_type=Path),
              help="Write the training ids of near-copies here, one per line (for bench run --exclude).")
@overwrite_option("--exclude-out")
@click.pass_context
def check(ctx, spec: str, duplicate_threshold: float, exclude_out: Path | None, overwrite: bool) -> None:
    """Validate every pair of every split of SPEC (e.g. isic2017:/data) and report near-duplicate images
    across splits; exit 1 when any pair is bad."""
    import numpy as np

    from bench.plugin.build import load_dataset
    from bench.data.duplicates import near_duplicates, thumbnail

    refuse_to_replace(exclude_out, "--exclude-out", overwrite)
    try:
        dataset = load_dataset(host_of(ctx), spec, "bench data check")
    except DataError as exc:
        raise BenchError(f"layout problem: {exc}") from None
    problems = 0
    thumbs: dict[str, tuple[list[str], Any]] = {}
    click.echo(f"{dataset.spec}: splits {', '.join(dataset.splits)}")
    for name, split in dataset.splits.items():
        sizes: Counter[tuple[int, int]] = Counter()
        errors = []
        lesion = []
        ids, rows = [], []
        for i, image_id in enumerate(split.ids()):
            try:
                image, mask = split.load(i)
            except DataError as exc:
                errors.append(str(exc))
                continue
            sizes[image.shape[:2]] += 1
            lesion.append(float(mask.mean()))
            ids.append(image_id)
            rows.append(thumbnail(image))
        thumbs[name] = (ids, np.array(rows) if rows else np.zeros((0, 1)))
        common = ", ".join(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common(3))
        more = f", and {len(sizes) - 3} other sizes" if len(sizes) > 3 else ""
        area = f"; lesion area {100 * min(lesion):.1f}-{100 * max(lesion):.1f}% of the image" if lesion else ""
        shape = f"; sizes (HxW) {common}{more}" if common else ""  # none when every pair is bad: never a "-"
        click.echo(f"  {name}: {len(split)} pairs, {len(errors)} bad{shape}{area}")
        for message in errors:
            click.echo(f"    problem: {message}")
        problems += len(errors)
    pairs = near_duplicates(thumbs, duplicate_threshold)
    click.echo(f"near-duplicates across splits (thumbnail correlation >= {duplicate_threshold:g}): {len(pairs)}")
    for pair in pairs[:50]:
        click.echo(f"  {pair.split_a}/{pair.id_a} ~ {pair.split_b}/{pair.id_b} ({pair.correlation:.3f})")
    if len(pairs) > 50:
        click.echo(f"  ... and {len(pairs) - 50} more")
    if exclude_out is not None:
        from bench.storage.atomic import atomic_write_bytes

        train = sorted({p.id_a if p.split_a == "train" else p.id_b
                        for p in pairs if "train" in (p.split_a, p.split_b)})
        atomic_write_bytes(exclude_out, ("# training images with a near-copy in another split "
                                         f"({dataset.spec}, threshold {duplicate_threshold:g})\n"
                                         + "".join(f"{i}\n" for i in train)).encode())
        click.echo(f"wrote {len(train)} training ids to {exclude_out} (use: bench run ... --exclude {exclude_out})")
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
