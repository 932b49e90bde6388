#!/usr/bin/env bash
# The GPU measurements of docs/performance.md, in one script: every number of its GPU section comes from here.
#
#   DATA=isic2017:/data/isic2017 OUT=perf-out scripts/gpu-perf.sh                 # everything (about 15 min)
#   DATA=... OUT=perf-out STAGES="1 2 3 4" scripts/gpu-perf.sh                    # or in two calls
#   DATA=... OUT=perf-out STAGES="5 6 7" scripts/gpu-perf.sh
#
# Measurements run one after another (each timing alone on the card), except the packed ones, whose point
# is to share it. Results land in $OUT as bench perf / bench sweep output (JSON and text); log.txt sums up.
# A dry run on a CPU at toy sizes checks the script itself (about 4 minutes on two cores with one segmenter):
#
#   DEVICE=cpu DATA='fixture?n=64' STEPS=2 WARMUP=1 SEGS="cdnn0 unet" SEG_SIZE=48x64 SIZE=48x64 GAN_BATCH=8 \
#       PACK=2 OUT=/tmp/perf-dry scripts/gpu-perf.sh
set -euo pipefail

DATA=${DATA:?set DATA, e.g. isic2017:/data/isic2017}
OUT=${OUT:-perf-out}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-5}
SEGS=${SEGS:-cdnn0 cdnn1 cdnn2 cdnn3 cdnn4 cdnn5 cdnn6 unet}  # Tables 2 and 3, each at its own size
SEG_SIZE=${SEG_SIZE:-}         # empty: each segmenter's own size (cdnn3 96x128, cdnn4 384x512, others 192x256)
SIZE=${SIZE:-192x256}          # the paper's GAN size, and the size of the packed sweep's runs
GAN_BATCH=${GAN_BATCH:-64}     # the paper profile's GAN batch size
PACK=${PACK:-4}                # runs sharing one GPU
STAGES=${STAGES:-1 2 3 4 5 6 7}
BENCH=${BENCH:-python3 -m bench}
mkdir -p "$OUT"
common=(--device "$DEVICE" --data "$DATA" --steps "$STEPS" --warmup "$WARMUP")
segs=()
for s in $SEGS; do segs+=(--seg "$s"); done
[ -n "$SEG_SIZE" ] && segs+=(--size "$SEG_SIZE")
sampling=(--gen dcgan --gen lapgan --with-sampling)

stamp() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/log.txt"; }
summary() {  # one line per row of a bench perf --json file
    python3 - "$1" <<'PY' | tee -a "$OUT/log.txt"
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["rows"]:
    print(f"  {sys.argv[1].split('/')[-1]}: {r['component']} {r['size']} b{r['batch']}: {r['train_img_s']:.0f} img/s, "
          f"bare {r['model_img_s']:.0f}, ratio {r['ratio']:.2f}, "
          f"{'captured' if r.get('cuda_graph') else r.get('graph_error') or 'eager'}, "
          f"capture {r.get('capture_s', 0):.1f} s, processes {r.get('processes', 1)}")
print(f"  machine: {d['machine']}")
PY
}

stage1() {
    stamp "1/7 eager step: $SEGS, each with DCGAN and LAPGAN samples"
    $BENCH perf "${segs[@]}" "${sampling[@]}" "${common[@]}" --json > "$OUT/eager.json"
    summary "$OUT/eager.json"
}
stage2() {
    stamp "2/7 the same with the step captured as a CUDA graph"
    $BENCH perf "${segs[@]}" "${sampling[@]}" --cuda-graph "${common[@]}" --json > "$OUT/graph.json"
    summary "$OUT/graph.json"
}
stage3() {
    stamp "3/7 the card's ceiling for cdnn0: the bare step at batch 64"
    $BENCH perf --seg cdnn0 ${SEG_SIZE:+--size "$SEG_SIZE"} --batch 64 "${common[@]}" --json > "$OUT/bare-b64.json"
    summary "$OUT/bare-b64.json"
}
stage4() {
    stamp "4/7 GAN training at the paper's GAN size and batch, alone and $PACK at once"
    $BENCH perf --gen dcgan --gen lapgan --size "$SIZE" --batch "$GAN_BATCH" "${common[@]}" --json > "$OUT/gan.json"
    $BENCH perf --gen dcgan --gen lapgan --size "$SIZE" --batch "$GAN_BATCH" "${common[@]}" --processes "$PACK" \
        --json > "$OUT/gan-packed.json"
    summary "$OUT/gan.json"
    summary "$OUT/gan-packed.json"
}
stage5() {
    stamp "5/7 $PACK runs' steps at once on one GPU, captured"
    $BENCH perf "${segs[@]}" "${sampling[@]}" --cuda-graph "${common[@]}" --processes "$PACK" --json \
        > "$OUT/graph-packed.json"
    summary "$OUT/graph-packed.json"
}
stage6() {
    stamp "6/7 Tables 2 and 3 (three seeds) projected: eager with one run per GPU, and packed with graphs"
    for table in table2 table3; do
        sweep=(sweep "$table" --profile paper --data "$DATA" --seeds 0,1,2 --out "$OUT/runs" --estimate)
        $BENCH "${sweep[@]}" --perf "$OUT/eager.json" --perf "$OUT/gan.json" > "$OUT/estimate-$table-eager.txt" || true
        $BENCH "${sweep[@]}" --set cuda_graph=true --runs-per-gpu "$PACK" --perf "$OUT/graph-packed.json" \
            --perf "$OUT/gan-packed.json" > "$OUT/estimate-$table-packed.txt" || true
        tail -n 1 "$OUT/estimate-$table-eager.txt" "$OUT/estimate-$table-packed.txt" | tee -a "$OUT/log.txt"
    done
}
stage7() {
    stamp "7/7 a packed sweep: $PACK short two-phase cdnn0 runs at once, captured, then one eager run alone"
    cat > "$OUT/packed.toml" <<EOF
[grid]
seed = [$(seq -s, 0 $((PACK - 1)))]
[run]
seg = "cdnn0"
gen = "dcgan"
size = "$SIZE"
gan_size = "$SIZE"
data = "$DATA"
synthetic_epochs = 2
finetune_epochs = 2
gan_epochs = 1
cuda_graph = true
EOF
    BENCH_CACHE_DIR="$OUT/cache" $BENCH sweep "$OUT/packed.toml" --out "$OUT/packed-runs" --runs-per-gpu "$PACK" \
        --device "$DEVICE" > "$OUT/packed-sweep.txt" 2>&1 || true
    BENCH_CACHE_DIR="$OUT/cache" $BENCH run --seg cdnn0 --gen dcgan --size "$SIZE" --gan-size "$SIZE" \
        --data "$DATA" --synthetic-epochs 2 --finetune-epochs 2 --gan-epochs 1 --device "$DEVICE" \
        --out "$OUT/eager-run" > "$OUT/eager-run.txt" 2>&1 || true
    python3 - "$OUT" <<'PY' | tee -a "$OUT/log.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for name in ("packed-runs", "eager-run"):
    for path in sorted((out / name).rglob("results.json")):
        r = json.loads(path.read_text())
        images = sum(h["images"] for h in r["history"])
        step = r["runtime"]["step"]
        print(f"  {name} seed {r['run']['seed']}: jaccard {r['summary']['jaccard']:.4f}, {images} images in "
              f"{r['timings']['train_s']:.1f} s (validation included) = {images / r['timings']['train_s']:.0f} "
              f"img/s, graphed {step.get('graphed')} ({step.get('graph_error')}), bank {r['runtime'].get('bank')}")
PY
}

for stage in $STAGES; do "stage$stage"; done
stamp "done"
