"""``bench claims``: a verdict on each claim of Pollastri et al. from run records.

Every claim is a direction (``a`` above or below ``b``) between two leaderboard cells of the same table.
The verdict comes from the seed x image comparison of :mod:`bench.results.stats`, with the family-wise error
rate of a table's claims held at 5% by Holm's step-down adjustment of their p values: *supported* when the
adjusted p is below 0.05 and the sign is the claimed one, *contradicted* when it is below 0.05 with the other
sign, *not resolvable with this many seeds* otherwise (or when a side has a single seed), *not run* when a cell
has no records. Each claim's own (unadjusted) interval is shown beside it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from bench.results import paper
from bench.results.grouping import (BASELINE, MATCHED, by_environment, distinct_labels, group_tables, in_environment_of, md,
                                    row_label, strategy)
from bench.results.leaderboard import seeds_text
from bench.results.scalability import VARIES, equivalent_images, share_interval
from bench.results.stats import LEVEL, Comparison, compare, sample

IMAGE_FLOOR = "not resolvable on these test images"
SMALLER = "smaller than the paper's"
EQUIVALENT = "equivalent to no effect"
MARGIN = 0.01
"""The equivalence margin (Jaccard): a difference this small is below every gain Tables 2 and 3 call an
improvement but one (+0.001 to +0.014)."""
SUPPORTED, CONTRADICTED, UNRESOLVED, NOT_RUN = ("supported", "contradicted", "not resolvable with this many seeds",
                                                "not run")
GANS = (paper.DCGAN, paper.LAPGAN, paper.BOTH)
ELLIPSES = "ellipses"
"""The shape-prior control strategy (two-phase with the ``ellipses`` generator)."""


@dataclass(frozen=True)
class Verdict:
    """One claim, what the paper reports, what the records measure and the verdict."""

    claim: str
    paper: str
    measured: str
    interval: str
    seeds: str
    verdict: str
    p: float | None = None
    """The unadjusted two-sided p of "no difference" (``None``: not judged)."""
    agrees: bool = False
    """Whether the measured difference has the claimed sign."""
    p_holm: float | None = None
    """``p`` adjusted for the family of claims judged in its table (Holm)."""
    gain: float | None = None
    """The paper's number for the claim, when it gives one."""
    floor: float | None = None
    """The smallest effect these test images let any number of seeds detect (80% power)."""
    low: float | None = None
    high: float | None = None
    """The claim's own (unadjusted) 95% interval."""
    share: bool = False
    """Whether ``gain``, ``low`` and ``high`` are shares of extra real images (the scalability claims), not
    Jaccard differences: no equivalence margin or image floor applies to them."""

    def number(self, value: float) -> str:
        """``value`` in the claim's unit: a Jaccard difference, or a share of real images."""
        return f"{value:+.0%}" if self.share else f"{value:+.3f}"


Cells = dict[tuple[str, str], list[dict[str, Any]]]


def cells_of(records: list[dict[str, Any]]) -> Cells:
    """``(row, strategy) -> records`` of single models trained on the whole training set, labelled as the
    leaderboard labels them (:func:`distinct_labels`): runs that differ in more than their seed never share a
    cell, so a real-only run at another width or epoch count is not the baseline of a verdict."""
    single = [r for r in records if r["run"].get("kind") != "ensemble" and r["run"].get("subset") is None]
    cells: Cells = defaultdict(list)
    for cell, record in zip(distinct_labels(by_environment(single), lambda r: row_label(r["run"]),
                                            lambda r: strategy(r["run"])), single):
        cells[cell].append(record)
    return cells


def _identities(records: list[dict[str, Any]]) -> int:
    return len({r["identity"]["hash"] for r in records})


def _verdict(result: Comparison | None, direction: int, why_missing: str = "") -> tuple[str, str, str, str]:
    """``(measured, interval, seeds, verdict)`` of the claim ``sign(a - b) == direction``."""
    if result is None:
        return "–", "–", "–", NOT_RUN + (f" ({why_missing})" if why_missing else "")
    seeds = seeds_text(result)
    interval = result.interval
    if interval is None:
        return f"{result.mean:+.4f}", "none (one seed)", seeds, UNRESOLVED
    text = f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"
    if (interval[0] > 0 and direction > 0) or (interval[1] < 0 and direction < 0):
        verdict = SUPPORTED
    elif interval[0] > 0 or interval[1] < 0:
        verdict = CONTRADICTED
    else:
        verdict = UNRESOLVED
    return f"{result.mean:+.4f}", text, seeds, verdict


class _Table:
    """The cells of one table and the comparisons between them. Claims name cells by segmenter and strategy (the
    base labels); each must be one labelled cell of the leaderboard, and the two of a comparison must share
    its row settings, or the claim says which runs make it ambiguous."""

    def __init__(self, records: list[dict[str, Any]], metric: str) -> None:
        self.cells = cells_of(records)
        self.bases: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for label, members in sorted(self.cells.items()):
            self.bases[(row_label(members[0]["run"]), strategy(members[0]["run"]))].append(label)
        self.metric = metric
        self._samples: dict[tuple[str, str], Any] = {}

    def compare(self, a: tuple[str, str], b: tuple[str, str]) -> tuple[Comparison | None, str]:
        """``a - b`` (base labels), or ``None`` with the reason: a cell not run, run with several settings, or
        the two run with different row settings."""
        labels = []
        founds = [self.bases.get(cell, []) for cell in (a, b)]
        for i in (0, 1):  # one experiment in several environments: take the other side's, as the leaderboard does
            if len(founds[i]) > 1 and len(founds[1 - i]) == 1 and self._one_identity(founds[i]):
                founds[i] = [in_environment_of(founds[i], founds[1 - i][0], self.cells)]
        for cell, found in zip((a, b), founds):
            if not found:
                return None, f"no {cell[0]} {cell[1]} runs"
            if len(found) > 1:
                return None, (f"ambiguous: {cell[0]} {cell[1]} ran with different settings ("
                              f"{'; '.join(f'{r} · {c}' for r, c in found)}); keep the runs of one setting under --runs")
            labels.append(found[0])
        (row_a, col_a), (row_b, col_b) = labels
        if row_a != row_b:
            return None, (f"ambiguous: {a[1]} ran as {row_a}, {b[1]} as {row_b}: not the same experiment but for the "
                          "strategy; keep the runs of one setting under --runs")
        for cell in labels:
            if cell not in self._samples:
                self._samples[cell] = sample(self.cells[cell], self.metric)
        return compare(self._samples[labels[0]], self._samples[labels[1]]), ""

    def _one_identity(self, labels: list[tuple[str, str]]) -> bool:
        """Whether cells differ only in their environment (their runs are one experiment)."""
        return len({r["identity"]["hash"] for label in labels for r in self.cells[label]}) == 1

    def rows(self) -> list[tuple[str, dict[str, Any]]]:
        """``(segmenter label, a run of it)`` for every base row, sorted."""
        seen: dict[str, dict[str, Any]] = {}
        for (row, _), labels in self.bases.items():
            seen.setdefault(row, self.cells[labels[0]][0]["run"])
        return sorted(seen.items())


def _claim(table: _Table, text: str, paper_text: str, a: tuple[str, str], b: tuple[str, str],
           direction: int, gain: float | None = None) -> Verdict:
    result, why = table.compare(a, b)
    floor = result.image_mde() if result is not None and result.has_seed_interval else None
    bounds = result.interval if result is not None else None
    return Verdict(text, paper_text, *_verdict(result, direction, why), *_test(result, direction), gain=gain,
                   floor=floor, low=bounds[0] if bounds else None, high=bounds[1] if bounds else None)


def magnitude(v: Verdict, significant: bool) -> str:
    """The verdict of a claim the paper gives a number for, once its sign is decided (``significant``: Holm).

    *smaller than the paper's*: the interval lies short of the paper's number (it excludes it on the side of
    zero), whether or not it excludes zero; *equivalent to no effect*: not significant and the interval within
    ±:data:`MARGIN`; otherwise the sign's verdict (or why it is not resolved)."""
    if v.gain is None or v.low is None or v.high is None:
        return (SUPPORTED if v.agrees else CONTRADICTED) if significant else unresolved(v)
    short = v.high < v.gain if v.gain > 0 else v.low > v.gain
    wrong_side = v.high < 0 if v.gain > 0 else v.low > 0
    if significant and not v.agrees:
        return CONTRADICTED
    if short and not wrong_side:
        where = "excludes zero and" if significant else ("holds zero but" if v.low <= 0 <= v.high else "")
        return f"{SMALLER} (its interval {where} excludes the paper's {v.number(v.gain)})".replace("  ", " ")
    if significant:
        return SUPPORTED
    if not v.share and -MARGIN < v.low and v.high < MARGIN:
        return f"{EQUIVALENT} (its interval lies within ±{MARGIN:g})"
    return unresolved(v)


def unresolved(v: Verdict) -> str:
    """Why a claim is not resolved: seeds (more would help), or the test images themselves (their floor, the
    smallest effect any number of seeds detects on them, is above the paper's number: say which)."""
    if v.gain is not None and v.floor is not None and v.floor > abs(v.gain):
        return f"{IMAGE_FLOOR} (their floor {v.floor:.4f} is above the paper's {v.gain:+.3f})"
    return UNRESOLVED


def _test(result: Comparison | None, direction: int) -> tuple[float | None, bool]:
    """``(p, agrees)`` of a comparison: its unadjusted p and whether its sign is the claimed one."""
    if result is None or result.p_value is None:
        return None, False
    return result.p_value, (result.mean > 0) == (direction > 0) and result.mean != 0


def holm(verdicts: list[Verdict], level: float = 1 - LEVEL) -> list[Verdict]:
    """The verdicts with the family-wise error rate of their family (every claim with a p) held at ``level``:
    Holm's step-down adjustment. A claim is supported or contradicted only when its adjusted p is below
    ``level``; otherwise it is not resolvable, whatever its unadjusted interval says."""
    judged = sorted((i for i, v in enumerate(verdicts) if v.p is not None), key=lambda i: verdicts[i].p or 0.0)
    m, running = len(judged), 0.0
    adjusted: dict[int, float] = {}
    for rank, i in enumerate(judged):
        running = max(running, min(1.0, (m - rank) * (verdicts[i].p or 0.0)))
        adjusted[i] = running
    out = []
    for i, v in enumerate(verdicts):
        if i not in adjusted:
            out.append(v)
            continue
        verdict = magnitude(v, adjusted[i] < level)
        out.append(replace(v, verdict=verdict, p_holm=adjusted[i]))
    return out


def _paper_rows(table: _Table) -> list[tuple[str, dict[str, float]]]:
    """The table's rows the paper reports, with the paper's numbers."""
    out = []
    for row, run in table.rows():
        numbers = paper.table(run["seg"], run["loss"])
        if numbers is not None and row == row_label(run) and len(numbers) > 1:
            out.append((row, numbers))
    return out


def claims(records: list[dict[str, Any]], metric: str = "jaccard") -> dict[tuple, list[Verdict]]:
    """Table key -> the verdict on every claim the paper makes for the rows those records have."""
    tables = group_tables(records)
    out: dict[tuple, list[Verdict]] = {}
    for key, group in tables.items():
        table = _Table(group, metric)
        verdicts: list[Verdict] = []
        for row, numbers in _paper_rows(table):
            real = numbers[paper.REAL]
            for gan in GANS:
                gain = numbers[gan] - real
                verb = "beats" if gain > 0 else "is below"
                verdicts.append(_claim(table, f"{gan} two-phase {verb} real only for {row}", f"{gain:+.3f}",
                                       (row, gan), (row, BASELINE), 1 if gain > 0 else -1, gain))
            for gan in GANS:
                for control, name in ((MATCHED, "the compute-matched real-only control"),
                                      (ELLIPSES, "the ellipses shape-prior control")):
                    verdicts.append(_claim(table, f"{gan} two-phase beats {name} for {row}", "implied",
                                           (row, gan), (row, control), 1))
            best = max(GANS + (paper.REAL,), key=lambda s: numbers[s])
            verdicts.append(_best(table, row, best, numbers))
            single = max((paper.DCGAN, paper.LAPGAN), key=lambda s: numbers[s])
            verdicts.append(_claim(table, f"both GANs alternating is below the better single GAN ({single}) for {row}",
                                   f"{numbers[paper.BOTH] - numbers[single]:+.3f}", (row, paper.BOTH), (row, single),
                                   -1, numbers[paper.BOTH] - numbers[single]))
            for gan in GANS:
                verdicts.append(_claim(table, f"mixing real and {gan} images in one phase costs about 0.02 for {row}",
                                       f"{paper.MIXED_COST:+.3f} (average)", (row, f"{gan} (mixed)"), (row, gan), -1,
                                       paper.MIXED_COST))
        verdicts += _scalability(group, metric)
        out[key] = holm(verdicts)
    return out


def _best(table: _Table, row: str, best: str, numbers: dict[str, float]) -> Verdict:
    """``best`` above every other strategy of the row: supported when every comparison is, contradicted when
    one is significantly the other way, otherwise unresolved; measured against the closest competitor."""
    results = []
    for other in (s for s in GANS + (paper.REAL,) if s != best):
        result, why = table.compare((row, best), (row, other))
        if result is None:
            return Verdict(f"{best} is the best strategy for {row}", "best by "
                           f"{numbers[best] - max(v for s, v in numbers.items() if s != best):+.3f}",
                           "–", "–", "–", f"{NOT_RUN} ({why})")
        results.append((other, result))
    verdicts = [(other, result, _verdict(result, 1)) for other, result in results]
    closest = min(verdicts, key=lambda v: v[1].mean)
    if any(v[2][3] == CONTRADICTED for v in verdicts):
        verdict = CONTRADICTED
    elif all(v[2][3] == SUPPORTED for v in verdicts):
        verdict = SUPPORTED
    else:
        verdict = UNRESOLVED
    measured, interval, seeds, _ = closest[2]
    margin = numbers[best] - max(v for s, v in numbers.items() if s != best)
    tests = [_test(result, 1) for _, result in results]
    against = [p for p, agrees in tests if p is not None and not agrees]
    if any(p is None for p, _ in tests):
        p_best, agrees = None, False
    elif against:  # contradicted when one competitor is significantly better
        p_best, agrees = min(against), False
    else:  # supported only when it beats every competitor: the largest p (an intersection-union test)
        p_best, agrees = max(p for p, _ in tests if p is not None), True
    return Verdict(f"{best} is the best strategy for {row}", f"best by {margin:+.3f}",
                   f"{measured} over {closest[0]} (the closest)", interval, seeds, verdict, p_best, agrees)


def _scalability(records: list[dict[str, Any]], metric: str) -> list[Verdict]:
    """Section 5.3: at 500 real images, a GAN is worth 58% (DCGAN) or 138% (LAPGAN) more real images for
    CDNN0. The sign comes from the GAN's gain at 500; the magnitude from the bootstrap interval of the share of
    extra real images it is worth (:func:`share_interval`), read off the real-only curve, against the paper's."""
    seg = paper.SCALABILITY_SEG
    by: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    mine = [r for r in records if r["run"].get("kind") != "ensemble" and r["run"]["seg"] == seg
            and row_label(r["run"]) == seg and isinstance(r["runtime"].get("n_train"), int)]
    # labelled as `bench scalability` labels its curves: a strategy run at other settings is its own curve
    labels = distinct_labels(mine, lambda r: strategy(r["run"]), lambda r: str(r["runtime"]["n_train"]), ignore=VARIES,
                             axis_of=lambda k: "row")
    for (label, _), record in zip(labels, mine):
        by[(label, record["runtime"]["n_train"])].append(record)
    mixed = sorted({label for label, _ in labels} - {strategy(r["run"]) for r in mine})
    real_cells = {n: rs for (s, n), rs in by.items() if s == BASELINE}
    real_curve = sorted((n, float(np.mean([np.mean([x[metric] for x in r["per_image"]]) for r in rs])))
                        for n, rs in real_cells.items())
    out = []
    for gan, (size, share) in paper.SCALABILITY.items():
        claim = f"{gan} two-phase at {size} real images is worth +{share:.0%} real images for {seg}"
        gan_cell, real_cell = by.get((gan, size)), by.get((BASELINE, size))
        if mixed and (not gan_cell or not real_cell):
            out.append(Verdict(claim, f"+{share:.0%}", "–", "–", "–", f"{NOT_RUN} (ambiguous: the {seg} runs differ in "
                               f"more than size and strategy: {'; '.join(mixed)}; see `bench scalability`)"))
            continue
        if not gan_cell or not real_cell or len(real_curve) < 2:
            missing = "runs at several training-set sizes (`bench scalability --run`)"
            out.append(Verdict(claim, f"+{share:.0%}", "–", "–", "–", f"{NOT_RUN} ({missing})"))
            continue
        if _identities(gan_cell) > 1 or _identities(real_cell) > 1:
            out.append(Verdict(claim, f"+{share:.0%}", "–", "–", "–",
                               f"{NOT_RUN} (several experiments at {size} images; see `bench scalability`)"))
            continue
        result = compare(sample(gan_cell, metric), sample(real_cell, metric))
        measured, interval, seeds, verdict = _verdict(result, 1)
        p_value, agrees = _test(result, 1)
        n_eq, bound = equivalent_images(real_curve, float(np.mean([np.mean([x[metric] for x in r["per_image"]])
                                                                   for r in gan_cell])))
        worth = f"{(n_eq - size) / size:+.0%} images" if n_eq is not None else \
            f"{bound} the real-only curve's range"
        bounds = share_interval({n: sample(rs, metric) for n, rs in real_cells.items()}, sample(gan_cell, metric),
                                size)
        if bounds is not None:
            top = (max(real_curve)[0] - size) / size
            shown = [f"> {top:+.0%}" if b == np.inf else f"< {(min(real_curve)[0] - size) / size:+.0%}"
                     if b == -np.inf else f"{b:+.0%}" for b in bounds]
            interval += f"; worth [{shown[0]}, {shown[1]}] images"
        out.append(Verdict(claim, f"+{share:.0%}", f"{measured} Jaccard, worth {worth}", interval, seeds, verdict,
                           p_value, agrees, gain=share, low=bounds[0] if bounds else None,
                           high=bounds[1] if bounds else None, share=True))
    return out


def render(records: list[dict[str, Any]], metric: str = "jaccard") -> str:
    """Markdown: one table of verdicts per table of records."""
    out = ["# Claims of Pollastri et al. against these records", "",
           "Each claim compares two cells of one leaderboard table (same data, test split, profile, protocol). "
           "The interval is the seed x image 95% interval of `bench leaderboard` (`docs/statistics.md`); "
           f"verdicts: **{SUPPORTED}** (the difference has the claimed sign and its Holm-adjusted p is below 0.05), "
           f"**{CONTRADICTED}** (the other sign, adjusted p below 0.05), **{UNRESOLVED}** (adjusted p 0.05 or more, "
           f"or a side has one seed), **{IMAGE_FLOOR}** (not resolved, and the smallest effect these test images let "
           f"any number of seeds detect at 80% power is above the paper's number), **{SMALLER}** (the claim's "
           f"interval lies short of the paper's number, on the side of zero), **{EQUIVALENT}** (not significant, and "
           f"the interval within ±{MARGIN:g}), **{NOT_RUN}**. Magnitude verdicts read each claim's own interval; the "
           "equivalent-real-images claims, the bootstrap interval of the share (seeds of every cell and images "
           "resampled together). "
           "Paper: the difference Tables 2 and 3 (or the text) report, on the 600 ISIC 2017 test images at the "
           "paper's scale (other profiles shift every level, so a magnitude verdict compares with a number measured "
           "elsewhere).", ""]
    verdicts = claims(records, metric)
    if not verdicts:
        return "\n".join(out + ["No finished runs found.", ""])
    for key in sorted(verdicts, key=lambda k: tuple(str(x) for x in k)):
        data, test, split, profile, version = key
        rows = verdicts[key]
        counts = {v: sum(1 for r in rows if r.verdict.startswith(v)) for v in (SUPPORTED, SMALLER, EQUIVALENT,
                                                                               CONTRADICTED, UNRESOLVED, IMAGE_FLOOR,
                                                                               NOT_RUN)}
        family = sum(1 for r in rows if r.p is not None)
        out += [f"## {md(data)} (profile `{md(profile)}`, `{md(split)}` split of `{md(test)}`, protocol v{md(version)})",
                "", ", ".join(f"{n} {v}" for v, n in counts.items()) + f" ({metric}).", "",
                f"Family: the {family} claims of this table with an interval. Verdicts hold the family-wise error "
                f"rate at {1 - LEVEL:.0%} (Holm): the chance of any false supported or contradicted verdict among "
                "them is at most 5% when their nulls hold. The interval shown is each claim's own, unadjusted.", "",
                "| claim | paper | measured | 95% interval (seeds × images, unadjusted) | seeds | p (Holm) | verdict |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        out += [f"| {md(v.claim)} | {md(v.paper)} | {md(v.measured)} | {v.interval} | {v.seeds} | "
                f"{'–' if v.p_holm is None else f'{v.p_holm:.3f}'} | {md(v.verdict)} |" for v in rows]
        out.append("")
    return "\n".join(out)
