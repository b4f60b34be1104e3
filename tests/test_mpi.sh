#!/bin/sh
# test_mpi.sh — data-parallel train and eval under mpirun (tools/dist.c; README "More than one
# machine"), on the bundled stories260K, one OpenMP thread per rank (the bitwise claims hold for a
# given thread count):
#   - 2 ranks of --batch 2 = one process of --batch 2 --grad-accum 2, byte for byte (adapter,
#     checkpoint, loss log), for prefix, LoRA and full fine-tuning; 3 ranks = --grad-accum 3 (the
#     chain adds in rank order); and = one process of --batch 4 within fp32 rounding (TOL_DP)
#   - a run of 2 ranks stopped at step 3 and resumed by 1 process with --grad-accum 2 = the run of 1
#   - eval on 2 and 3 ranks writes the predictions.jsonl and results.json of one process (loglik,
#     sampled generation, --task lm)
#   - ranks given different data stop with one error naming the rank; a rank killed mid-run stops the
#     others (mpirun exits != 0) and the last checkpoint still resumes
# Run by make test when the build has MPI. Ends with "N passed, M failed".
BUILD=${1:-${AFFIX_BUILD:-build}}
AFFIX="$BUILD/affix"
M=tests/data/stories260K/stories260K.gguf
D=tests/data/demo/xnli.dev.en.tsv
T=$(mktemp -d "${TMPDIR:-/tmp}/affix_mpi.XXXXXX")
trap 'rm -rf "$T"' EXIT
. tests/harness.sh
# root in a container: Open MPI refuses without these; ASan: Open MPI's own allocations at exit
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# TOL_DP: K ranks of batch b vs one process of batch K*b: the same sums in another order (padding to
# another length, other reduction blocks), fp32 rounding of ~1e-7 in the gradients, which 6 AdamW
# steps at lr 3e-2 grow (the update divides by sqrt(v)): measured worst 3.5e-5 (full fine-tuning),
# 1.1e-5 (LoRA), relative to each tensor's max |value|
TOL_DP=1e-4
MPIRUN="mpirun --oversubscribe -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS"
run() { timeout 120 "$@" >"$T/last.log" 2>&1 </dev/null; } # (mpirun forwards stdin to rank 0: never the caller's)
same_files() { cmp -s "$1/checkpoint.safetensors" "$2/checkpoint.safetensors" && cmp -s "$1/$3" "$2/$3" &&
               [ "$(cut -d, -f1-4 "$1/train_log.csv")" = "$(cut -d, -f1-4 "$2/train_log.csv")" ]; }

TR="train -m $M --task nli --data $D --lang en --seq-len 96 --lr 3e-2 --max-steps 6 --limit 64 --quiet"
for method in prefix lora full; do
    case $method in
        prefix) opts="--method prefix --num-virtual-tokens 4"; file=adapter/adapter_model.safetensors ;;
        lora) opts="--method lora --r 4 --targets q,v"; file=adapter/adapter_model.safetensors ;;
        full) opts="--method full"; file=adapter/model.safetensors ;;
    esac
    run $MPIRUN -np 2 "$AFFIX" $TR $opts --batch 2 --out "$T/$method.np2"; rc=$?
    run "$AFFIX" $TR $opts --batch 2 --grad-accum 2 --out "$T/$method.ga2"
    check "$method: 2 ranks x batch 2 = batch 2 x grad-accum 2, byte for byte (adapter, checkpoint, log)" \
        '[ $rc -eq 0 ] && [ -f "$T/$method.np2/$file" ] && same_files "$T/$method.np2" "$T/$method.ga2" "$file"'
    run "$AFFIX" $TR $opts --batch 4 --out "$T/$method.b4"
    if "$AFFIX" compare "$T/$method.np2/$file" "$T/$method.b4/$file" --tol $TOL_DP >"$T/cmp.txt" 2>&1; then
        ok "$method: 2 ranks x batch 2 = one batch of 4 within $TOL_DP ($(tail -n 1 "$T/cmp.txt"))"
    else
        bad "$method: 2 ranks x batch 2 vs batch 4: $(grep -m 3 DIFFERS "$T/cmp.txt") $(tail -n 1 "$T/cmp.txt")"
    fi
done
# ... and a test that could not pass by accident: batch 4 is not byte-identical to 2 x 2 (other
# padding), so the byte equality above is the rank-order sum, not a coincidence of the data
check "prefix: batch 4 differs in its bytes from 2 x 2 (the byte checks above can fail)" \
    '! cmp -s "$T/prefix.b4/adapter/adapter_model.safetensors" "$T/prefix.ga2/adapter/adapter_model.safetensors"'

run $MPIRUN -np 3 "$AFFIX" $TR --method lora --r 4 --batch 1 --out "$T/np3"; rc=$?
run "$AFFIX" $TR --method lora --r 4 --batch 1 --grad-accum 3 --out "$T/ga3"
check "lora: 3 ranks = grad-accum 3, byte for byte (the gradient chain adds in rank order)" \
    '[ $rc -eq 0 ] && same_files "$T/np3" "$T/ga3" adapter/adapter_model.safetensors'

# resume with another number of ranks: the data position and the optimizer state carry over
P="--method prefix --num-virtual-tokens 4 --batch 2"
run $MPIRUN -np 2 "$AFFIX" $TR $P --out "$T/stop" --stop-at 3
run "$AFFIX" $TR $P --grad-accum 2 --out "$T/stop" --resume "$T/stop"; rc=$?
check "2 ranks to step 3, then 1 process --grad-accum 2 to step 6 = the uninterrupted run" \
    '[ $rc -eq 0 ] && same_files "$T/stop" "$T/prefix.ga2" adapter/adapter_model.safetensors'

# eval: 2 ranks write what one process writes
EV="eval -m $M --adapter $T/prefix.ga2/adapter --task xnli --data tests/data/demo/xnli.test.en.tsv tests/data/demo/xnli.test.zh.tsv --limit 7 --quiet"
run "$AFFIX" $EV --scoring loglik --out "$T/ev1"
run $MPIRUN -np 2 "$AFFIX" $EV --scoring loglik --out "$T/ev2"; rc=$?
check "eval --scoring loglik on 2 ranks: predictions.jsonl and results.json of one process" \
    '[ $rc -eq 0 ] && [ -s "$T/ev2/predictions.jsonl" ] && cmp -s "$T/ev1/predictions.jsonl" "$T/ev2/predictions.jsonl" && cmp -s "$T/ev1/results.json" "$T/ev2/results.json"'
run "$AFFIX" $EV --max-new-tokens 4 --temp 0.8 --out "$T/eg1"
run $MPIRUN -np 3 "$AFFIX" $EV --max-new-tokens 4 --temp 0.8 --out "$T/eg3"; rc=$?
check "eval, sampled generation on 3 ranks: the same predictions (each example seeds its own draw)" \
    '[ $rc -eq 0 ] && [ $(wc -l < "$T/eg3/predictions.jsonl") -eq 14 ] && cmp -s "$T/eg1/predictions.jsonl" "$T/eg3/predictions.jsonl" && cmp -s "$T/eg1/results.json" "$T/eg3/results.json"'

LM="eval -m $M --task lm --data tests/data/tasks/xquad.zh.json tests/data/tasks/xquad.th.json --limit 5 --seq-len 64 --quiet"
run "$AFFIX" $LM --out "$T/lm1"
run $MPIRUN -np 2 "$AFFIX" $LM --out "$T/lm2"; rc=$?
check "eval --task lm on 2 ranks: the NLL lines and results.json of one process" \
    '[ $rc -eq 0 ] && [ -s "$T/lm2/predictions.jsonl" ] && cmp -s "$T/lm1/predictions.jsonl" "$T/lm2/predictions.jsonl" && cmp -s "$T/lm1/results.json" "$T/lm2/results.json"'

# ranks that disagree: one error line naming the rank, no output
timeout 60 mpirun --oversubscribe -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS -np 1 "$AFFIX" $TR $P --out "$T/mix" : \
    -np 1 "$AFFIX" $TR $P --out "$T/mix" --limit 32 >"$T/mix.log" 2>&1 </dev/null; rc=$?
check "ranks with different data: exit != 0, the error names rank 1, no checkpoint" \
    '[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "affix: error: the training data differs between the ranks: rank 0 has .*rank 1 has" "$T/mix.log" && [ ! -f "$T/mix/checkpoint.safetensors" ]'

# a rank killed mid-run: the others stop, the last checkpoint resumes
LONG="train -m $M --task nli --data $D --lang en --seq-len 96 --lr 3e-2 --max-steps 100000 --save-every 5 --quiet $P"
$MPIRUN -np 2 "$AFFIX" $LONG --out "$T/kill" >"$T/kill.log" 2>&1 </dev/null &
mp=$!
i=0
while [ ! -f "$T/kill/checkpoint.safetensors" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
victim=$(pgrep -f "$AFFIX $LONG --out $T/kill" | grep -vx "$mp" | tail -n 1) # a rank, not mpirun
[ -n "$victim" ] && kill -9 "$victim"
i=0
while kill -0 $mp 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $mp 2>/dev/null; then kill -9 $mp; pkill -9 -f "$T/kill" 2>/dev/null; rc=124; else wait $mp; rc=$?; fi
check "a rank killed with SIGKILL: mpirun stops the other and exits != 0 (within 30 s; exit $rc)" \
    '[ -n "$victim" ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && ! pgrep -f "$T/kill" >/dev/null'
step=$(tail -n 1 "$T/kill/train_log.csv" | cut -d, -f1)
run "$AFFIX" $TR $P --grad-accum 2 --max-steps 100000 --stop-at $(( (step / 5 + 1) * 5 + 1 )) --out "$T/kill" --resume "$T/kill"; rc=$?
check "... and its last checkpoint resumes (1 process, one step past the next save)" \
    '[ $rc -eq 0 ] && [ "$(tail -n 1 "$T/kill/train_log.csv" | cut -d, -f1)" -gt "$step" ]'

finish
