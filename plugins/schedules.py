"""Training schedules: real-only (the baseline), two-phase (the paper's), mixed (its ablation)."""

from __future__ import annotations

from bench.api import Phase, RunConfig, ScheduleMeta, hookimpl


def real_only(config: RunConfig) -> list[Phase]:
    return [Phase("real", "real", config.epochs)]


def two_phase(config: RunConfig) -> list[Phase]:
    return [
        Phase("synthetic", "synthetic", config.synthetic_epochs),
        Phase("real", "real", config.finetune_epochs),
    ]


def mixed(config: RunConfig) -> list[Phase]:
    return [Phase("mixed", "mixed", config.epochs)]


@hookimpl
def bench_register_schedules(register):
    register("real-only", real_only, description="real data only for `epochs` epochs (paper: 400)",
             meta=ScheduleMeta(needs_generator=False, uses=("epochs",)), reference="Pollastri et al., Section 5")
    register("two-phase", two_phase,
             description="synthetic for `synthetic_epochs`, then real for `finetune_epochs` (paper: 400 + 100)",
             meta=ScheduleMeta(needs_generator=True, uses=("synthetic_epochs", "finetune_epochs")),
             reference="Pollastri et al., Section 5, Fig. 5")
    register("mixed", mixed, description="half real, half synthetic in every batch for `epochs` epochs",
             meta=ScheduleMeta(needs_generator=True, uses=("epochs",)),
             reference="Pollastri et al., Section 5 (cost 0.020 Jaccard)")
