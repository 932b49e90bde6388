"""Training schedules: real-only (the baseline), two-phase (the paper's), mixed (its ablation)."""

from __future__ import annotations

from bench.components import Phase
from bench.hookspecs import hookimpl


def real_only(profile):
    return [Phase("real", "real", profile["epochs"])]


def two_phase(profile):
    return [
        Phase("synthetic", "synthetic", profile["synthetic_epochs"]),
        Phase("real", "real", profile["finetune_epochs"]),
    ]


def mixed(profile):
    return [Phase("mixed", "mixed", profile["epochs"])]


@hookimpl
def bench_register_schedules(register):
    register("real-only", real_only, description="real data only for `epochs` epochs (paper: 400)",
             defaults={"needs_generator": False}, reference="Pollastri et al., Section 5")
    register("two-phase", two_phase,
             description="synthetic for `synthetic_epochs`, then real for `finetune_epochs` (paper: 400 + 100)",
             defaults={"needs_generator": True}, reference="Pollastri et al., Section 5, Fig. 5")
    register("mixed", mixed, description="half real, half synthetic in every batch for `epochs` epochs",
             defaults={"needs_generator": True}, reference="Pollastri et al., Section 5 (cost 0.020 Jaccard)")
