#!/usr/bin/env bash
# The DDPM on a GPU, in one call: its speed at the paper's sizes (bench perf, alone on the device), then the
# ddpm column of leaderboards/isic2017-quick.md (cdnn3 and unet, quick profile, seeds 0-2), generator quality
# of ddpm, dcgan and lapgan with the feature-space metrics (each seed's reference: a real-only U-Net of that
# seed, trained here), and their sample grids. Everything but perf runs side by side.
#
#   DATA=isic2017:/path/to/isic2017 OUT=gpu-ddpm-out scripts/gpu-ddpm.sh
#
# Results: $OUT/log.txt (each step, exit code, seconds) and $OUT/results.tar.gz (records, logs, grids, perf
# JSON; no checkpoints); with DEADLINE=SECONDS, $OUT/partial.tar.gz holds what was done by then. Dry run on a CPU at toy sizes (about 3 minutes on 2 cores):
#   DATA='fixture?n=24&n_test=6' OUT=/tmp/dry EXTRA='--gan-epochs 1 --epochs 1 --synthetic-epochs 1
#   --finetune-epochs 1' GAN_EXTRA='--gan-epochs 1 --n 6 --n-features 12' PERF='--size 48x64 --batch 8
#   --steps 1 --warmup 1 --data fixture?n=24' scripts/gpu-ddpm.sh
set -u
: "${DATA:?set DATA, e.g. DATA=isic2017:/path/to/isic2017}"
OUT=${OUT:-gpu-ddpm-out}
SEEDS=${SEEDS:-"0 1 2"}
EXTRA=${EXTRA:-}
GAN_EXTRA=${GAN_EXTRA:-}
PERF=${PERF:-"--batch 64 --steps 10 --warmup 3 --data $DATA"}
BENCH=${BENCH:-"python3 -m bench"}
export BENCH_CACHE_DIR=${BENCH_CACHE_DIR:-/tmp/bench-cache} OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$OUT/logs" "$OUT/samples"
log() { echo "$(date +%T) $*" | tee -a "$OUT/log.txt"; }
step() {  # step NAME COMMAND...: stdout and stderr to logs/NAME.{out,err}, one line in log.txt
  local name=$1 t0
  shift
  t0=$(date +%s)
  "$@" >"$OUT/logs/$name.out" 2>"$OUT/logs/$name.err"
  log "$name rc=$? $(( $(date +%s) - t0 ))s"
}

if [ -n "${DEADLINE:-}" ]; then  # a call with a time limit still brings back what finished before it
  (sleep "$DEADLINE"; log "deadline: packing what is there"
   tar -czf "$OUT/partial.tar.gz" --exclude='*.pt' -C "$OUT" logs samples runs reference quality 2>/dev/null) &
fi
log "start: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo no GPU)"
# shellcheck disable=SC2086
step perf $BENCH perf --gen ddpm --seg cdnn3 --with-sampling --json $PERF

per_seed() {
  local k=$1 ref
  # shellcheck disable=SC2086
  for seg in cdnn3 unet; do
    step "ddpm-$seg-$k" $BENCH run --gen ddpm --seg $seg --profile quick --seed "$k" --data "$DATA" \
      --out "$OUT/runs" $EXTRA &
  done
  # shellcheck disable=SC2086
  step "reference-$k" $BENCH run --gen none --seg unet --profile quick --seed "$k" --data "$DATA" \
    --out "$OUT/reference" $EXTRA
  ref=$(ls -d "$OUT"/reference/*/quick/none__unet__real-only__bce*/seed_"$k" | head -1)
  for gen in ddpm dcgan lapgan; do
    # shellcheck disable=SC2086
    step "quality-$gen-$k" $BENCH gan quality --gen $gen --profile quick --seed "$k" --data "$DATA" \
      --reference "$ref" --out "$OUT/quality" $GAN_EXTRA &
  done
  wait
  if [ "$k" = 0 ]; then
    for gen in ddpm dcgan lapgan; do
      # shellcheck disable=SC2086
      step "sample-$gen" $BENCH gan sample --gen $gen --profile quick --seed 0 --data "$DATA" --n 16 \
        --out "$OUT/samples/$gen-seed0.png" ${GAN_EXTRA%%--n *}
    done
  fi
}
for k in $SEEDS; do per_seed "$k" & done
wait
log "done"
tar -czf "$OUT/results.tar.gz" --exclude='*.pt' -C "$OUT" logs samples runs reference quality 2>>"$OUT/log.txt"
log "packed: $(du -h "$OUT/results.tar.gz" | cut -f1)"
