#!/usr/bin/env bash
# One row of Table 2 at the paper's protocol, on one GPU: SEG real only, with DCGAN, with LAPGAN and with both,
# for SEEDS, packed (PACK runs share the card) and captured. Estimates first and stops BEFORE starting when the
# estimate exceeds DEADLINE seconds; records and board go to leaderboards/isic2017-paper/.
#
#   DATA=isic2017:/data/isic2017 DEADLINE=36000 OUT=paper-row scripts/gpu-paper-row.sh cdnn0 0,1,2
#
# 1. bench perf --grid ROW --cuda-graph --processes PACK: exactly the rows the row's runs need;
# 2. bench sweep ROW --estimate: one GPU's time for the runs not done; above DEADLINE, print it and exit 3;
# 3. bench sweep ROW --runs-per-gpu PACK: the runs (a finished run is never run again: rerun to continue);
# 4. their records (results.json only) into leaderboards/isic2017-paper/records/, the board rendered to
#    leaderboards/isic2017-paper.md, and both packed into $OUT/paper-row.tgz (to bring back from a lent machine:
#    tar xzf paper-row.tgz at the repository root).
#
# A dry run on a CPU at toy sizes checks the script itself (about 2 minutes on two cores):
#
#   DEVICE=cpu DATA='fixture?n=16&n_test=4' PROFILE=quick PACK=2 DEADLINE=600 OUT=/tmp/paper-row-dry \
#       BOARD=/tmp/paper-row-dry/board RUN="epochs = 1
#   synthetic_epochs = 1
#   finetune_epochs = 1
#   gan_epochs = 1
#   width = 0.125" scripts/gpu-paper-row.sh cdnn3 0
set -euo pipefail
cd "$(dirname "$0")/.."

SEG=${1:?usage: scripts/gpu-paper-row.sh SEG SEEDS (e.g. cdnn0 0,1,2)}
SEEDS=${2:?usage: scripts/gpu-paper-row.sh SEG SEEDS (e.g. cdnn0 0,1,2)}
DATA=${DATA:?set DATA, e.g. isic2017:/data/isic2017}
DEADLINE=${DEADLINE:?set DEADLINE: the seconds of GPU time the row may take (the runs do not start beyond it)}
OUT=${OUT:-paper-row}
DEVICE=${DEVICE:-cuda}
PROFILE=${PROFILE:-paper}
PACK=${PACK:-4}
STEPS=${STEPS:-20}
RUN=${RUN:-}                  # extra [run] lines of the grid (dry runs: small epochs and width)
BOARD=${BOARD:-leaderboards/isic2017-paper}
BENCH=${BENCH:-python3 -m bench}
mkdir -p "$OUT"
export BENCH_CACHE_DIR=${BENCH_CACHE_DIR:-$OUT/cache}
t0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - t0 )) s: $*" | tee -a "$OUT/log.txt"; }

grid="$OUT/row-$SEG.toml"
cat > "$grid" <<EOF
description = "Table 2, one row: $SEG real only and with each GAN strategy, paper protocol, packed and captured"
[grid]
gen = ["none", "dcgan", "lapgan", "dcgan,lapgan"]
seed = [$SEEDS]
[run]
seg = "$SEG"
profile = "$PROFILE"
data = "$DATA"
cuda_graph = true
$RUN
EOF

stamp "1/4 the rows these runs need, $PACK processes at once"
$BENCH perf --grid "$grid" --cuda-graph --processes "$PACK" --device "$DEVICE" --steps "$STEPS" --json \
    > "$OUT/perf.json"

stamp "2/4 the estimate"
$BENCH sweep "$grid" --runs-per-gpu "$PACK" --out "$OUT/runs" --estimate --perf "$OUT/perf.json" \
    > "$OUT/estimate.txt"
cat "$OUT/estimate.txt"
todo=$($BENCH sweep "$grid" --runs-per-gpu "$PACK" --out "$OUT/runs" --estimate --perf "$OUT/perf.json" --json \
       | python3 -c "import json, sys; print(round(json.load(sys.stdin)['todo_s']))")
if [ "$todo" -gt "$DEADLINE" ]; then
    stamp "STOPPED before starting: the runs not done are estimated at $todo s of GPU time, over DEADLINE=$DEADLINE s"
    exit 3
fi
stamp "estimated $todo s for the runs not done (DEADLINE $DEADLINE s): starting"

stamp "3/4 the runs, $PACK at once"
$BENCH sweep "$grid" --runs-per-gpu "$PACK" --out "$OUT/runs" --device "$DEVICE" 2>&1 | tee "$OUT/sweep.txt"

stamp "4/4 records and board"
python3 - "$OUT/runs" "$BOARD/records" <<'PY'
import pathlib, shutil, sys
runs, records = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for path in runs.rglob("results.json"):
    if "sweeps" in path.parts:
        continue
    target = records / path.relative_to(runs)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, target)
    print(f"  {target}")
PY
board_md="$BOARD.md"
{
    echo "# ISIC 2017, paper profile: Table 2 rows at the paper's protocol, on a GPU"
    echo
    echo "Produced by \`scripts/gpu-paper-row.sh SEG SEEDS\` (real only, DCGAN, LAPGAN and both; packed $PACK to a GPU,"
    echo "captured). Its estimate before starting is in the script's log. Rerender with"
    echo "\`bench leaderboard --runs $BOARD/records --out $board_md --plots\`."
    echo
    echo "<!-- rendered by bench leaderboard from the records below; do not edit under this line -->"
} > "$OUT/header.md"
$BENCH leaderboard --runs "$BOARD/records" --out "$board_md" --plots > /dev/null  # plots: ${BOARD}_plots/
joined=$(mktemp)
cat "$OUT/header.md" "$board_md" > "$joined"
mv "$joined" "$board_md"
tar czf "$OUT/paper-row.tgz" "$BOARD" "$board_md" "${BOARD}_plots"
stamp "done: $board_md, $OUT/paper-row.tgz"
