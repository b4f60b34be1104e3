#!/bin/sh
# test_crash.sh — what a crash or a full disk may leave behind (README "Robustness"), on the bundled
# stories260K with a checkpoint at every step:
#   - kill -9 at random moments (many land inside a save), then --resume, again and again: every
#     resume starts (no torn file is ever accepted), the adapter directory is never left behind its
#     checkpoint once resumed, and the run that was killed 16 times ends byte-identical to the run
#     that never was (adapter, checkpoint, every logged step once)
#   - a disk that fills up mid-run (a small tmpfs, where mount is allowed): the run stops with one
#     error line, exit != 0, the last good checkpoint stays and resumes, and once there is room the
#     run ends byte-identical to the uninterrupted one
# Ends with "N passed, M failed".
BUILD=${1:-${AFFIX_BUILD:-build}}
AFFIX="$BUILD/affix"
M=tests/data/stories260K/stories260K.gguf
T=$(mktemp -d "${TMPDIR:-/tmp}/affix_crash.XXXXXX")
MNT=""
trap '[ -n "$MNT" ] && umount "$MNT" 2>/dev/null; rm -rf "$T"' EXIT
. tests/harness.sh
export OMP_NUM_THREADS=1
STEPS=100
TR="train -m $M --method prefix --num-virtual-tokens 4 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en
    --seq-len 96 --batch 2 --lr 3e-2 --max-steps $STEPS --limit 64 --save-every 1 --quiet"
same_run() { # two run directories: the same adapter, checkpoint and logged steps
    cmp -s "$1/adapter/adapter_model.safetensors" "$2/adapter/adapter_model.safetensors" &&
        cmp -s "$1/checkpoint.safetensors" "$2/checkpoint.safetensors" &&
        [ "$(cut -d, -f1-4 "$1/train_log.csv")" = "$(cut -d, -f1-4 "$2/train_log.csv")" ]
}
state_step() { sed -n 's/.*"step": \([0-9]*\), "complete": true.*/\1/p' "$1/adapter/affix_state.json" 2>/dev/null; }
ckpt_step() { tail -n 1 "$1/train_log.csv" | cut -d, -f1; }

t0=$(date +%s%N)
"$AFFIX" $TR --out "$T/ref" 2>/dev/null
# the kill window scales with this machine's speed (a sanitizer build on a loaded machine is 10x
# slower): each start is killed within an eighth of the uninterrupted run's time (at least 40 ms)
win=$(( ($(date +%s%N) - t0) / 8000000 )); [ $win -ge 40 ] || win=40
check "the uninterrupted run: $STEPS steps, its adapter directory at step $STEPS" \
    '[ "$(ckpt_step "$T/ref")" = $STEPS ] && [ "$(state_step "$T/ref")" = $STEPS ]'

# ---- kill -9 at random moments, resume each time ----
kills=0 refused=0 midrun=0 seed=7
while [ $kills -lt 16 ]; do
    args="--out $T/run"
    [ -f "$T/run/checkpoint.safetensors" ] && args="$args --resume $T/run"
    "$AFFIX" $TR $args 2>"$T/err.txt" &
    pid=$!
    seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
    ms=$(( seed % win + 20 ))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 137 ]; then refused=$((refused + 1)); cat "$T/err.txt"; fi
    kills=$((kills + 1))
    [ "$(ckpt_step "$T/run" 2>/dev/null)" != $STEPS ] && midrun=$((midrun + 1))
done
args="--out $T/run" # (on a slow machine every kill may have come before the first save)
[ -f "$T/run/checkpoint.safetensors" ] && args="$args --resume $T/run"
"$AFFIX" $TR $args 2>"$T/err.txt"; rc=$?
check "16 x kill -9 within ${win} ms of each start, then resume ($midrun of them mid-run): every start was accepted ($refused refused), the last resume finishes (exit $rc)" \
    '[ $refused -eq 0 ] && [ $rc -eq 0 ] && [ $midrun -ge 5 ]'
check "... and ends byte-identical to the uninterrupted run (adapter, checkpoint, each step logged once)" 'same_run "$T/ref" "$T/run"'
check "... its adapter directory says it holds step $STEPS, complete" '[ "$(state_step "$T/run")" = $STEPS ]'
check "... and no stale .tmp- file is left" '[ -z "$(find "$T/run" -name ".*.tmp-*")" ]'

# a crash between the checkpoint and the adapter (the adapter one save behind): resume writes it again
"$AFFIX" $TR --out "$T/gap" --stop-at 10 2>/dev/null
cp "$T/gap/adapter/adapter_model.safetensors" "$T/a10"
"$AFFIX" $TR --out "$T/gap2" --stop-at 9 2>/dev/null
cp "$T/gap2/adapter/adapter_model.safetensors" "$T/gap/adapter/adapter_model.safetensors"
printf '{"step": 10, "complete": false}\n' > "$T/gap/adapter/affix_state.json"
out=$("$AFFIX" eval -m $M --adapter "$T/gap/adapter" --task xnli --data tests/data/demo/xnli.test.en.tsv --limit 2 --quiet 2>&1 >/dev/null); rc=$?
check "an adapter directory caught mid-save is refused by eval, with one error line" \
    '[ $rc -ne 0 ] && [ "$(printf "%s\n" "$out" | grep -c "affix: error:.*stopped while writing it")" -eq 1 ]'
# (a resume that then fails before its first save: the rewrite happens first, at the start)
"$AFFIX" $TR --out "$T/gap" --resume "$T/gap" --dump-batches "$T/no/such/dir/b.jsonl" 2>/dev/null; rc=$?
check "resume in place writes it again from the checkpoint first (step 10, the bytes of step 10; the run then failed: exit $rc)" \
    '[ $rc -ne 0 ] && [ "$(state_step "$T/gap")" = 10 ] && cmp -s "$T/a10" "$T/gap/adapter/adapter_model.safetensors"'

# ---- a disk that fills up ----
MNT="$T/disk"
mkdir -p "$MNT"
if mount -t tmpfs -o size=512k tmpfs "$MNT" 2>/dev/null; then
    "$AFFIX" $TR --out "$MNT/run" --stop-at 10 2>/dev/null
    good=$(ckpt_step "$MNT/run")
    cp "$MNT/run/checkpoint.safetensors" "$T/good.safetensors"
    dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null # fill what is left
    out=$("$AFFIX" $TR --out "$MNT/run" --resume "$MNT/run" 2>&1); rc=$?
    check "full disk: the run stops with one error line and exit != 0 (exit $rc: $(printf '%s' "$out" | head -c 160))" \
        '[ $rc -ne 0 ] && [ "$(printf "%s\n" "$out" | grep -c "affix: error:")" -eq 1 ]'
    check "... the last good checkpoint (step $good) is intact, not replaced by a torn one" \
        'cmp -s "$T/good.safetensors" "$MNT/run/checkpoint.safetensors"'
    rm -f "$MNT/filler"
    "$AFFIX" $TR --out "$MNT/run" --resume "$MNT/run" 2>/dev/null; rc=$?
    check "... with room again, resume finishes byte-identical to the uninterrupted run" '[ $rc -eq 0 ] && same_run "$T/ref" "$MNT/run"'
    umount "$MNT" 2>/dev/null
    MNT=""
else
    echo "  skip  full disk: mount -t tmpfs is not allowed here (not counted)"
    MNT=""
fi

finish
