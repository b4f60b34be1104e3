#!/bin/sh
# bench_mpi.sh — 1 rank vs 2 ranks of `affix train` on one machine (README "More than one machine").
#   sh tools/bench_mpi.sh MODEL [STEPS] [METHODS]    e.g. sh tools/bench_mpi.sh ~/.cache/affix/gemma-3-270m-q4_k_m.gguf
# For each method, the same global batch (8 examples: --batch 4 x 2) three ways:
#   1 process, 1 thread, --grad-accum 2      the baseline of the speed-up
#   2 ranks, 1 thread each (mpirun -np 2)    the data-parallel run
#   1 process, 2 threads, --grad-accum 2     what the same 2 cores give without MPI
# Tokens/s: the mean of train_log.csv's tokens_per_s over the steps after the first (global tokens
# of a step / its wall time; loading not counted). Nothing else should run meanwhile.
set -u
MODEL=${1:?usage: sh tools/bench_mpi.sh MODEL [STEPS] [METHODS]}
STEPS=${2:-6}
METHODS=${3:-prefix lora full}
AFFIX=${AFFIX:-build/affix}
DATA=${DATA:-tools/reproduce/data/nli-train.en.tsv}
[ -f "$DATA" ] || DATA=tests/data/demo/xnli.dev.en.tsv
T=$(mktemp -d "${TMPDIR:-/tmp}/affix_bench_mpi.XXXXXX")
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mean_tps() { awk -F, 'NR > 2 && $5 > 0 { s += $5; n++ } END { if (n) printf "%.0f", s / n; else print "?" }' "$1/train_log.csv"; }

echo "| method | gradient MB / step | 1 rank x 1 thread, tok/s | 2 ranks x 1 thread, tok/s | speed-up | 1 process x 2 threads, tok/s |"
echo "|---|---:|---:|---:|---:|---:|"
for m in $METHODS; do
    case $m in
        prefix) opts="--method prefix --num-virtual-tokens 10" ;;
        lora) opts="--method lora --r 4 --targets q,v" ;;
        full) opts="--method full" ;;
        *) opts="--method $m" ;;
    esac
    TR="train -m $MODEL $opts --task nli --data $DATA --lang en --seq-len 256 --batch 4 --lr 1e-4 --max-steps $STEPS --quiet"
    OMP_NUM_THREADS=1 "$AFFIX" $TR --grad-accum 2 --out "$T/a" 2>/dev/null || { echo "| $m | failed (1 rank) |"; continue; }
    mpirun -np 2 --bind-to core -x OMP_NUM_THREADS=1 "$AFFIX" $TR --out "$T/b" 2>"$T/b.err" >/dev/null || { echo "| $m | failed (2 ranks) |"; continue; }
    OMP_NUM_THREADS=2 "$AFFIX" $TR --grad-accum 2 --out "$T/c" 2>/dev/null || { echo "| $m | failed (2 threads) |"; continue; }
    mb=$(OMP_NUM_THREADS=1 mpirun -np 2 -x OMP_NUM_THREADS=1 "$AFFIX" $(echo "$TR" | sed 's/--quiet//; s/--max-steps [0-9]*/--max-steps 1/') --out "$T/d" 2>&1 >/dev/null | sed -n 's/.*gradient values (\([0-9.]*\) MB).*/\1/p')
    a=$(mean_tps "$T/a") b=$(mean_tps "$T/b") c=$(mean_tps "$T/c")
    echo "| $m | ${mb:-?} | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "?" }') | $c |"
    rm -rf "$T/a" "$T/b" "$T/c" "$T/d"
done
