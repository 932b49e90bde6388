"""What Pollastri et al. report: Tables 2 and 3 (Jaccard on the 600 ISIC 2017 test images) and the claims of
Sections 5 and 5.3, as data the leaderboard and ``bench claims`` compare records with."""

from __future__ import annotations

from typing import Any

REAL, DCGAN, LAPGAN, BOTH = "real only", "dcgan", "lapgan", "dcgan+lapgan"
STRATEGIES = (REAL, DCGAN, LAPGAN, BOTH)

TABLES: dict[tuple[str, str], dict[str, float]] = {
    # Table 2: CDNN0-6 with the Tanimoto loss (Eq. 1); CDNN4 was dropped before the GAN experiments
    ("cdnn0", "tanimoto"): {REAL: 0.746, DCGAN: 0.751, LAPGAN: 0.739, BOTH: 0.742},
    ("cdnn1", "tanimoto"): {REAL: 0.759, DCGAN: 0.753, LAPGAN: 0.764, BOTH: 0.752},
    ("cdnn2", "tanimoto"): {REAL: 0.746, DCGAN: 0.756, LAPGAN: 0.762, BOTH: 0.750},
    ("cdnn3", "tanimoto"): {REAL: 0.755, DCGAN: 0.762, LAPGAN: 0.764, BOTH: 0.756},
    ("cdnn4", "tanimoto"): {REAL: 0.717},
    ("cdnn5", "tanimoto"): {REAL: 0.739, DCGAN: 0.752, LAPGAN: 0.740, BOTH: 0.747},
    ("cdnn6", "tanimoto"): {REAL: 0.731, DCGAN: 0.749, LAPGAN: 0.756, BOTH: 0.751},
    # Table 3: U-Net with BCE (Eq. 6) and with the Tanimoto loss (Eq. 1)
    ("unet", "bce"): {REAL: 0.753, DCGAN: 0.755, LAPGAN: 0.767, BOTH: 0.764},
    ("unet", "tanimoto"): {REAL: 0.744, DCGAN: 0.755, LAPGAN: 0.762, BOTH: 0.760},
}
"""``(segmenter, loss) -> {strategy: Jaccard}`` for the two-phase schedule (400 synthetic + 100 real epochs)
against real only (400 epochs)."""

MIXED_COST = -0.020
"""Section 5: mixing real and synthetic images in one training phase costs 0.020 Jaccard on average."""

SCALABILITY: dict[str, tuple[int, float]] = {DCGAN: (500, 0.58), LAPGAN: (500, 1.38)}
"""Section 5.3 (Figs. 8, 9), CDNN0: at 500 real images, the GAN's gain equals that of this many more real
images, as a fraction of 500 ("up to 58%" for DCGAN; "138%" for LAPGAN)."""
SCALABILITY_SEG = "cdnn0"


def table(seg: str, loss: str) -> dict[str, float] | None:
    """The paper's row for a segmenter trained with ``loss``, or ``None`` when the paper has none."""
    return TABLES.get((seg, loss))


def strategy_of(run: dict[str, Any]) -> str | None:
    """The paper's column a run belongs to: real only, or a two-phase run with the paper's generators."""
    gens = tuple(run.get("gen") or ())
    if not gens:
        return REAL if run.get("schedule") == "real-only" else None
    label = "+".join(gens)
    return label if run.get("schedule") == "two-phase" and label in STRATEGIES else None


def gain(run: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    """The paper's Jaccard difference between a run's row and cell and a baseline's (any real-only variant
    counts as the paper's real only), or ``None`` when the paper did not run both."""
    row = table(run.get("seg", ""), run.get("loss", ""))
    col = strategy_of(run)
    base = REAL if not baseline.get("gen") else strategy_of(baseline)
    if row is None or col is None or base is None or col == base or col not in row or base not in row:
        return None
    return round(row[col] - row[base], 4)
