#!/bin/sh
# fuzz_long.sh — a longer fuzzing campaign than .ci/run's 60 s: every harness of `make fuzz` for
# SECONDS each (or until RUNS executions), from its seeds, under ASan + UBSan, one process, an RSS
# limit of 2 GB and a 10 s timeout per input. Prints one table row per harness (README "Robustness").
#   make fuzz BUILD=build/fuzz-long && sh tools/fuzz_long.sh build/fuzz-long 600 10000000
B=${1:-build/fuzz-long}
SECS=${2:-600}
RUNS=${3:-10000000}
echo "| harness | executions | seconds | executions/s | coverage (edges) | crashes, leaks, OOMs, timeouts |"
echo "|---|---:|---:|---:|---:|---|"
for h in "$B"/fuzz/fuzz_*; do
    n=${h##*/}
    corpus="$B/corpus/$n"
    mkdir -p "$corpus" "$B/artifacts/$n"
    gen=$(sed -n 's/^ \* fuzz-seeds-gen: //p' "tests/$n.c")
    [ -z "$gen" ] || $gen "$corpus"
    log="$B/$n.log"
    t0=$(date +%s)
    "$h" -max_total_time="$SECS" -runs="$RUNS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$B/artifacts/$n/" "$corpus" $(sed -n 's/^ \* fuzz-seeds: //p' "tests/$n.c") >"$log" 2>&1
    rc=$?
    t=$(( $(date +%s) - t0 ))
    ex=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    found=$(ls "$B/artifacts/$n" | wc -l)
    echo "| $n | ${ex:-?} | $t | $(awk -v e="${ex:-0}" -v t="$t" 'BEGIN { if (t > 0) printf "%.0f", e / t }') | ${cov:-?} | $([ $rc -eq 0 ] && [ "$found" -eq 0 ] && echo none || echo "exit $rc, $found artifacts") |"
done
