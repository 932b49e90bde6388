#!/usr/bin/env bash
# The GPU measurements of docs/performance.md, in one script: every number of its GPU section comes from here.
#
#   DATA=isic2017:/data/isic2017 OUT=perf-out scripts/gpu-perf.sh
#
# Measurements run one after another (each timing alone on the card), except the packed ones, whose point
# is to share it. Results land in $OUT as bench perf / bench sweep output (JSON and text). A dry run on a
# CPU at toy sizes checks the script itself:
#
#   DEVICE=cpu DATA='fixture?n=32' STEPS=2 WARMUP=1 SIZE=32x48 BIG_SIZE=32x48 GAN_BATCH=8 PACK=2 \
#       OUT=/tmp/perf-dry scripts/gpu-perf.sh
set -euo pipefail

DATA=${DATA:?set DATA, e.g. isic2017:/data/isic2017}
OUT=${OUT:-perf-out}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-5}
SIZE=${SIZE:-192x256}          # the paper's size for cdnn0 and U-Net
BIG_SIZE=${BIG_SIZE:-384x512}  # cdnn4's size
GAN_BATCH=${GAN_BATCH:-64}     # the paper profile's GAN batch size
PACK=${PACK:-4}                # runs sharing one GPU
BENCH=${BENCH:-python3 -m bench}
mkdir -p "$OUT"
common=(--device "$DEVICE" --data "$DATA" --steps "$STEPS" --warmup "$WARMUP")

stamp() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$OUT/log.txt"; }

stamp "1/7 eager step: cdnn0, unet at $SIZE with generator samples; cdnn4 at $BIG_SIZE"
$BENCH perf --seg cdnn0 --seg unet --gen dcgan --gen lapgan --with-sampling --size "$SIZE" "${common[@]}" --json \
    > "$OUT/eager.json"
$BENCH perf --seg cdnn4 --size "$BIG_SIZE" "${common[@]}" --json > "$OUT/eager-cdnn4.json"

stamp "2/7 the same with the step captured as a CUDA graph"
$BENCH perf --seg cdnn0 --seg unet --gen dcgan --gen lapgan --with-sampling --size "$SIZE" --cuda-graph \
    "${common[@]}" --json > "$OUT/graph.json"
$BENCH perf --seg cdnn4 --size "$BIG_SIZE" --cuda-graph "${common[@]}" --json > "$OUT/graph-cdnn4.json"

stamp "3/7 the card's ceiling for cdnn0: the bare step at batch 64"
$BENCH perf --seg cdnn0 --size "$SIZE" --batch 64 "${common[@]}" --json > "$OUT/bare-b64.json"

stamp "4/7 GAN training at the paper's GAN batch size, alone and $PACK at once"
$BENCH perf --gen dcgan --gen lapgan --size "$SIZE" --batch "$GAN_BATCH" "${common[@]}" --json > "$OUT/gan.json"
$BENCH perf --gen dcgan --gen lapgan --size "$SIZE" --batch "$GAN_BATCH" "${common[@]}" --processes "$PACK" \
    --json > "$OUT/gan-packed.json"

stamp "5/7 $PACK runs' steps at once on one GPU (captured), and the same eager"
$BENCH perf --seg cdnn0 --seg unet --gen dcgan --gen lapgan --with-sampling --size "$SIZE" --cuda-graph \
    "${common[@]}" --processes "$PACK" --json > "$OUT/graph-packed.json"
$BENCH perf --seg cdnn4 --size "$BIG_SIZE" --cuda-graph "${common[@]}" --processes "$PACK" --json \
    > "$OUT/graph-packed-cdnn4.json"

stamp "6/7 Table 2 (three seeds) projected: today's way (eager, one run per GPU) and packed with graphs"
sweep=(sweep table2 --profile paper --data "$DATA" --seeds 0,1,2 --out "$OUT/runs" --estimate)
$BENCH "${sweep[@]}" --perf "$OUT/eager.json" --perf "$OUT/eager-cdnn4.json" --perf "$OUT/gan.json" \
    > "$OUT/estimate-eager.txt" || true
$BENCH "${sweep[@]}" --set cuda_graph=true --runs-per-gpu "$PACK" --perf "$OUT/graph-packed.json" \
    --perf "$OUT/graph-packed-cdnn4.json" --perf "$OUT/gan-packed.json" > "$OUT/estimate-packed.txt" || true
tail -n 2 "$OUT/estimate-eager.txt" "$OUT/estimate-packed.txt" | tee -a "$OUT/log.txt"

stamp "7/7 a packed sweep: $PACK short two-phase cdnn0 runs on one GPU, captured, and one eager run to compare"
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
BENCH_CACHE_DIR="$OUT/cache" $BENCH run --seg cdnn0 --gen dcgan --size "$SIZE" --gan-size "$SIZE" --data "$DATA" \
    --synthetic-epochs 2 --finetune-epochs 2 --gan-epochs 1 --device "$DEVICE" --out "$OUT/eager-run" \
    > "$OUT/eager-run.txt" 2>&1 || true
python3 - "$OUT" <<'PY' | tee -a "$OUT/log.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for name in ("packed-runs", "eager-run"):
    for path in sorted((out / name).rglob("results.json")):
        r = json.loads(path.read_text())
        images = sum(h["images"] for h in r["history"])
        step = r["runtime"]["step"]
        print(f"{name} seed {r['run']['seed']}: jaccard {r['summary']['jaccard']:.4f}, {images} images in "
              f"{r['timings']['train_s']:.1f} s = {images / r['timings']['train_s']:.0f} img/s, "
              f"graphed {step.get('graphed')} ({step.get('graph_error')}), bank {r['runtime'].get('bank')}")
PY
stamp "done"
