"""Training schedules: real-only (the baseline), two-phase (the paper's), mixed (its ablation), and
real-only-matched (the compute-matched control for two-phase)."""

from __future__ import annotations

from bench.api import Phase, RunConfig, ScheduleMeta, hookimpl


def real_only(config: RunConfig) -> list[Phase]:
    return [Phase("real", "real", config.epochs)]


def two_phase(config: RunConfig) -> list[Phase]:
    return [
        Phase("synthetic", "synthetic", config.synthetic_epochs),
        Phase("real", "real", config.finetune_epochs),
    ]


def real_only_matched(config: RunConfig) -> list[Phase]:
    """Real data for as many epochs (hence optimizer steps: every epoch has the same batches) as two-phase."""
    return [Phase("real", "real", config.synthetic_epochs + config.finetune_epochs)]


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
    register("real-only-matched", real_only_matched,
             description="control: real data only for `synthetic_epochs` + `finetune_epochs` epochs, the optimizer "
                         "steps of two-phase",
             meta=ScheduleMeta(needs_generator=False, uses=("synthetic_epochs", "finetune_epochs")),
             reference="skinbench control: two-phase's compute without its synthetic data")
    register("mixed", mixed, description="half real, half synthetic in every batch for `epochs` epochs",
             meta=ScheduleMeta(needs_generator=True, uses=("epochs",)),
             reference="Pollastri et al., Section 5 (cost 0.020 Jaccard)")
