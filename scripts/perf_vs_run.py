#!/usr/bin/env python3
"""Do bench perf's rows describe runs? One real run, then `bench perf --grid` of the same run, side by side.

    python scripts/perf_vs_run.py --data isic2017:../shared/data/isic2017 [--seg cdnn3] [--gen dcgan]
        [--profile quick] [--device cpu] [--set synthetic_epochs=3 ...] [--out /tmp/perf-vs-run]

Runs `bench run` (two-phase with --gen, else real only), then `bench perf --grid` on a one-cell grid of the same
settings, and prints per phase: the run's images/s (each epoch, from its record's history: the whole epoch,
bank refills included, the curve not), the rate the rows give for that phase (the step's train img/s for real
epochs; 1 / (1/step + draws x draw / pairs/s per image) for synthetic ones, as the estimate prices them), and
their ratio; then the run's training time against `bench sweep --estimate`'s. A benchmark: it measures, it
asserts nothing. docs/performance.md has its output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path


def bench(*args: str, env: dict[str, str] | None = None) -> str:
    cmd = [sys.executable, "-m", "bench", *args]
    print("$ bench " + " ".join(shlex.quote(a) for a in args), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seg", default="cdnn3")
    parser.add_argument("--gen", default="dcgan")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="KEY=VALUE for the run and the grid alike (repeatable)")
    parser.add_argument("--steps", default="20")
    parser.add_argument("--out", default="/tmp/perf-vs-run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(s.split("=", 1) for s in args.settings)
    cell = {"seg": args.seg, "gen": args.gen, "profile": args.profile, "data": args.data, **settings}
    grid = out / "one-run.toml"
    grid.write_text("[grid]\nseed = [0]\n[run]\n" + "".join(f'{k} = "{v}"\n' for k, v in cell.items()))

    record_line = bench("run", "--seg", args.seg, "--gen", args.gen, "--profile", args.profile, "--data", args.data,
                        "--device", args.device, "--out", str(out / "runs"), "--force",
                        *(a for k, v in settings.items() for a in (f"--{k.replace('_', '-')}", v)),
                        env={"BENCH_CACHE_DIR": str(out / "cache")})  # a fresh cache: the generator is trained
    shutil.rmtree(out / "cache", ignore_errors=True)
    record = json.loads(Path(record_line.split("record: ")[1].strip()).read_text())
    bench_out = bench("perf", "--grid", str(grid), "--device", args.device, "--steps", args.steps, "--json")
    (out / "perf.json").write_text(bench_out)
    rows = json.loads(bench_out)["rows"]
    step = next(r for r in rows if r["kind"] == "step")
    samplers = [r for r in rows if r["kind"] == "sampling"]

    n = record["runtime"]["n_train"]
    print(f"\n{args.seg} + {args.gen}, profile {args.profile}, {n} training pairs, {record['runtime']['device']}")
    print("| phase | epochs | run img/s (each epoch) | rows give | run / rows |")
    print("| --- | --- | --- | --- | --- |")
    phases: dict[str, list[dict]] = {}
    for h in record["history"]:
        phases.setdefault(h["phase"], []).append(h)
    for name, epochs in phases.items():
        source = epochs[0]["source"]
        seconds = 1 / step["train_img_s"]
        if source != "real":
            share = 1.0 if source == "synthetic" else 0.5
            for s in samplers:
                per = n * share / len(samplers)
                draw = min(s["draw"], math.ceil(per))
                seconds += math.ceil(per / draw) * draw / s["sample_pairs_s"] / n
        rates = [e["images_per_s"] for e in epochs]
        later = rates[1:] or rates
        print(f"| {name} ({source}) | {len(rates)} | {', '.join(f'{r:.1f}' for r in rates)} | {1 / seconds:.1f} | "
              f"{sum(later) / len(later) * seconds:.2f} (epochs after the first), {rates[0] * seconds:.2f} (first) |")
    estimate = json.loads(bench("sweep", str(grid), "--estimate", "--json", "--perf", str(out / "perf.json"),
                                "--out", str(out / "est")))["runs"][0]
    curve = sum(h.get("curve_s", 0.0) for h in record["history"])
    t = record["timings"]
    print("\n| part | run (s) | estimate (s) |\n| --- | --- | --- |")
    print(f"| GAN training | {t.get('gan_train_s', 0):.1f} | {estimate['gan_s']:.1f} |")
    print(f"| segmenter training | {t['train_s'] - curve:.1f} | {estimate['train_s']:.1f} |")
    print(f"| training curve and final prediction | {curve:.1f} + {t['evaluate_s']:.1f} (prediction and scoring) | "
          f"{estimate['eval_s']:.1f} |")


if __name__ == "__main__":
    main()
