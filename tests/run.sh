#!/bin/sh
# run.sh — runs every test program given as an argument, shows its output, and sums the
# "N passed, M failed" line each one ends with. A program that crashes, exits non-zero, does not
# end with that line, or ran no check at all ("0 passed, 0 failed") counts as a failure. Also
# verifies golden/ against golden/MANIFEST (sha256); without sha256sum that check fails (it is
# never skipped). Ends with "N passed, M failed" and exits 1 if anything failed.
if [ $# -eq 0 ]; then
    echo "usage: tests/run.sh TEST_PROGRAM...   (no program given: nothing was checked)"
    echo "0 passed, 1 failed"
    exit 1
fi
total_pass=0
total_fail=0
summary=""
for t in "$@"; do
    echo "=== $t"
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    last=$(printf '%s\n' "$out" | tail -n 1)
    p=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
    f=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then
        echo "!!! $t did not end with 'N passed, M failed' (exit code $rc)"
        p=0; f=1
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $t ran no check (0 passed, 0 failed; exit code $rc)"
        f=1
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $t exited with code $rc"
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    summary="$summary$(printf '  %-36s %4s passed, %s failed' "$t" "$p" "$f")
"
    # AFFIX_FAIL_FAST=1 (tools/mutants.sh): stop at the first program that failed
    if [ "${AFFIX_FAIL_FAST:-0}" = 1 ] && [ "$f" -ne 0 ]; then
        echo "=== summary (stopped at the first failure: AFFIX_FAIL_FAST=1)"
        printf '%s' "$summary"
        echo "$total_pass passed, $total_fail failed"
        exit 1
    fi
done
# the golden files are the ones the MANIFEST names, byte for byte
echo "=== golden/MANIFEST sha256"
if ! command -v sha256sum >/dev/null 2>&1; then
    echo "  FAIL  sha256sum is not on PATH: the golden files cannot be verified (install coreutils)"
    total_fail=$((total_fail + 1)); p=0; f=1
else
    list=$(sed -n 's/^\([^# ][^ ]*\.safetensors\) .*sha256=\([0-9a-f]\{64\}\).*/\2  golden\/\1/p' golden/MANIFEST)
    if [ -n "$list" ] && printf '%s\n' "$list" | sha256sum -c --quiet -; then
        echo "  ok    every golden file matches its MANIFEST sha256"
        total_pass=$((total_pass + 1)); p=1; f=0
    else
        echo "  FAIL  golden files differ from golden/MANIFEST (or it lists none)"
        total_fail=$((total_fail + 1)); p=0; f=1
    fi
fi
summary="$summary$(printf '  %-36s %4s passed, %s failed' "golden sha256" "$p" "$f")
"
echo "=== summary"
printf '%s' "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
