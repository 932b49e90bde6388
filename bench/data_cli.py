"""``bench data check D``: validate a dataset and print counts, sizes and problems per split."""

from __future__ import annotations

from collections import Counter

import click

from bench.errors import BenchError, DataError


def register(cli: click.Group, host_of) -> None:
    @cli.group()
    def data() -> None:
        """Check datasets."""

    @data.command("check")
    @click.argument("spec")
    @click.pass_context
    def check(ctx, spec: str) -> None:
        """Validate every pair of every split of SPEC (e.g. isic2017:/data); exit 1 when any is bad."""
        from bench.run import load_dataset

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
