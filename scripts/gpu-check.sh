#!/usr/bin/env bash
# What no CPU can show, in one call: run this first whenever a GPU is lent (at most 6 minutes on an H100/H200).
#
#   DATA=isic2017:/data/isic2017 OUT=gpu-check scripts/gpu-check.sh
#
# 1. the rows Tables 2 and 3 need (bench perf --grid table2 --grid table3 --profile paper): eager, captured, and
#    captured with PACK runs sharing the card; and the bare cdnn0 step at batch 64 (the card's ceiling);
# 2. one short captured paper-size two-phase run (cdnn0 + LAPGAN, GAN_EPOCHS GAN epochs, SYN synthetic and FT
#    real epochs): it FAILS LOUDLY unless its record says graphed: true; its epochs' images/s give the first
#    synthetic epoch against a later one and the synthetic epochs against the real ones;
# 3. the Table 2 and 3 estimates (three seeds): eager with one run per GPU, and packed + captured;
# 4. its summary, with the card and the commit, to $OUT/gpu-check.md and into docs/performance.md (between the
#    gpu-check markers) of the tree it runs in: on a lent machine, bring $OUT/gpu-check.md back and run
#    scripts/gpu-check.sh --paste $OUT/gpu-check.md here.
#
# A dry run on a CPU at toy sizes checks the script itself (about 3 minutes on two cores):
#
#   DEVICE=cpu DATA='fixture?n=64' PROFILE=quick STEPS=2 WARMUP=1 PACK=2 OUT=/tmp/gpu-check-dry \
#       SET="--set width=0.125" B64_ARGS="--size 48x64 --width 0.125" scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--paste" ]; then
    python3 - "$2" docs/performance.md <<'PY'
import re, sys
section, doc = open(sys.argv[1]).read().strip(), open(sys.argv[2]).read()
start, end = "<!-- gpu-check:start -->", "<!-- gpu-check:end -->"
if start not in doc:
    sys.exit(f"{sys.argv[2]}: no {start} marker")
doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: f"{start}\n{section}\n{end}", doc, flags=re.S)
open(sys.argv[2], "w").write(doc)
print(f"pasted {sys.argv[1]} into {sys.argv[2]}")
PY
    exit 0
fi

DATA=${DATA:?set DATA, e.g. isic2017:/data/isic2017}
OUT=${OUT:-gpu-check}
DEVICE=${DEVICE:-cuda}
PROFILE=${PROFILE:-paper}
STEPS=${STEPS:-20}
WARMUP=${WARMUP:-5}
PACK=${PACK:-4}
SYN=${SYN:-3}
FT=${FT:-2}
GAN_EPOCHS=${GAN_EPOCHS:-1}
SET=${SET:-}                   # --set KEY=VALUE ... for every grid and the run
B64_ARGS=${B64_ARGS:-}         # extra bench perf options of the batch-64 ceiling (dry runs: a small --size)
BENCH=${BENCH:-python3 -m bench}
mkdir -p "$OUT"
export BENCH_CACHE_DIR=${BENCH_CACHE_DIR:-$OUT/cache}
# shellcheck disable=SC2206
set_args=($SET)
run_args=()  # the same settings as bench run options: --set width=0.125 -> --width 0.125
for a in "${set_args[@]}"; do
    [ "$a" = "--set" ] && continue
    key=${a%%=*}
    run_args+=("--${key//_/-}" "${a#*=}")
done
# shellcheck disable=SC2206
b64_args=($B64_ARGS)
grids=(--grid table2 --grid table3 --profile "$PROFILE" "${set_args[@]}")
common=(--device "$DEVICE" --data "$DATA" --steps "$STEPS" --warmup "$WARMUP" --json)
t0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - t0 )) s: $*" | tee -a "$OUT/log.txt"; }

stamp "1/4 the rows of Tables 2 and 3: eager, captured, captured with $PACK runs at once; bare cdnn0 at batch 64"
$BENCH perf "${grids[@]}" "${common[@]}" > "$OUT/eager.json"
$BENCH perf "${grids[@]}" --cuda-graph "${common[@]}" > "$OUT/graph.json"
$BENCH perf "${grids[@]}" --cuda-graph --processes "$PACK" "${common[@]}" > "$OUT/graph-packed.json"
$BENCH perf --seg cdnn0 --batch 64 --cuda-graph "${b64_args[@]}" "${common[@]}" > "$OUT/bare-b64.json"

stamp "2/4 a short captured two-phase run at the profile's size: cdnn0 + LAPGAN"
$BENCH run --seg cdnn0 --gen lapgan --profile "$PROFILE" --data "$DATA" --device "$DEVICE" --cuda-graph \
    --synthetic-epochs "$SYN" --finetune-epochs "$FT" --gan-epochs "$GAN_EPOCHS" "${run_args[@]}" \
    --out "$OUT/run" --force > "$OUT/run.txt" 2>&1 || { cat "$OUT/run.txt"; echo "FAILED: the run did not finish"; exit 1; }

stamp "3/4 Tables 2 and 3 projected (three seeds)"
for table in table2 table3; do
    sweep=(sweep "$table" --profile "$PROFILE" --data "$DATA" --seeds 0,1,2 --out "$OUT/runs" --estimate "${set_args[@]}")
    $BENCH "${sweep[@]}" --perf "$OUT/eager.json" > "$OUT/estimate-$table-eager.txt" || true
    $BENCH "${sweep[@]}" --set cuda_graph=true --runs-per-gpu "$PACK" --perf "$OUT/graph-packed.json" \
        > "$OUT/estimate-$table-packed.txt" || true
done

stamp "4/4 summary"
python3 - "$OUT" "$PACK" <<'PY' | tee "$OUT/gpu-check.md"
import json, pathlib, subprocess, sys
out, pack = pathlib.Path(sys.argv[1]), int(sys.argv[2])
load = lambda name: json.loads((out / name).read_text())
eager, graph, packed, b64 = (load(n) for n in ("eager.json", "graph.json", "graph-packed.json", "bare-b64.json"))
machine = eager["machine"]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
record = json.loads(next((out / "run").rglob("results.json")).read_text())
print(f"### gpu-check: {machine.get('gpu') or machine['cpu']}, torch {machine['torch']}, commit {commit or 'unknown'}\n")
print("Each step row: images/s of the harness step (train), of the bare eager model step (bare), their ratio, "
      "and evaluation; sampling rows: pairs/s filling the bank; GAN rows: training images/s.\n")
print(f"| row | size | eager | bare | eager/bare | captured | captured/bare | {pack} packed, together | eval img/s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
key = lambda r: (r["kind"], r["name"], r["size"], r.get("loss"), r.get("gan_size"))
g, p = {key(r): r for r in graph["rows"]}, {key(r): r for r in packed["rows"]}
for r in eager["rows"]:
    c, k = g.get(key(r), {}), p.get(key(r), {})
    rate = "sample_pairs_s" if r["kind"] == "sampling" else "train_img_s"
    bare = r.get("model_img_s")
    cap = c.get(rate)
    label = r["component"] + (f" ({r['loss']})" if r["kind"] == "step" else "")
    size = f"{r['gan_size']} -> {r['size']}" if r["kind"] == "sampling" else r["size"]
    fmt = lambda v: f"{v:.0f}" if v else "-"
    graphed = "" if r["kind"] != "step" else ("" if c.get("graphed") else " (eager)")
    print(f"| {label} | {size} | {fmt(r.get(rate))} | {fmt(bare)} | {f'{r[rate] / bare:.2f}' if bare else '-'} | "
          f"{fmt(cap)}{graphed if r['kind'] == 'step' else ''} | {f'{cap / bare:.2f}' if bare and cap else '-'} | "
          f"{fmt(k.get(rate))} | {fmt(r.get('eval_img_s'))} |")
for error in sorted({r.get("graph_error") for r in graph["rows"] if r.get("graph_error")}):
    print(f"\nNot captured (these rows trained eagerly): {error}")
ceiling = b64["rows"][0]
print(f"\nThe card's ceiling for cdnn0: the bare step at batch 64, {ceiling['model_img_s']:.0f} img/s (harness, captured: "
      f"{ceiling['train_img_s']:.0f}).")
step = record["runtime"]["step"]
history = record["history"]
syn = [h["images_per_s"] for h in history if h["source"] == "synthetic"]
real = [h["images_per_s"] for h in history if h["source"] == "real"]
print(f"\nThe captured run (cdnn0 + LAPGAN, {record['run']['size']}, GAN at {record['run']['gan_size']}): graphed "
      f"{step.get('graphed')}, {step.get('graphs')} graphs, {step.get('replays')} replays, {step.get('eager_steps')} "
      f"eager steps, capture {step.get('capture_s')} s; bank {record['runtime'].get('bank')}.")
print(f"Synthetic epochs {', '.join(f'{x:.0f}' for x in syn)} img/s; real epochs {', '.join(f'{x:.0f}' for x in real)}; "
      f"the first synthetic epoch took {syn[1] / syn[0]:.2f}x the time of the second (target at most 1.25); "
      f"later synthetic epochs train at {
      f"{(sum(syn[1:]) / len(syn[1:])) / (sum(real[1:] or real) / len(real[1:] or real)):.2f} of the real epochs' "
      f"rate (targets 0.9 DCGAN, 0.85 LAPGAN); curve "
      f"{sum(h.get('curve_s', 0) for h in history):.1f} s of {record['timings']['train_s']:.1f} s training.")
for table in ("table2", "table3"):
    for kind in ("eager", "packed"):
        lines = (out / f"estimate-{table}-{kind}.txt").read_text().strip().splitlines()
        print(f"\n{table} ({kind}): {lines[-1] if lines else 'no output'}")
if not step.get("graphed"):
    print(f"\nFAILED: the captured run trained eagerly: {step.get('graph_error')}")
    sys.exit(1)
PY
if [ -f docs/performance.md ] && grep -q "gpu-check:start" docs/performance.md; then
    "$0" --paste "$OUT/gpu-check.md" > /dev/null
fi
stamp "done"
