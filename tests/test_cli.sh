#!/bin/sh
# test_cli.sh — the affix program end to end, on the bundled tiny model:
#   - generate --ids reproduces stories260K's 64 reference ids; tokenize round-trips
#   - train: the loss falls; two runs of N steps with a resume in between give the same adapter
#     bytes as one run of 2N steps; the adapter directory is in PEFT's format
#   - eval writes predictions/results/SVG; score recomputes the same numbers from the predictions
#   - bad input (truncated model, malformed data line, missing file, invalid UTF-8, bad options)
#     gives one line "affix: error: ..." naming the file, exit != 0, and no half-written output
# usage: tests/test_cli.sh BUILD_DIR      Ends with "N passed, M failed".
BUILD=${1:-${AFFIX_BUILD:-build}}
AFFIX="$BUILD/affix"
M=tests/data/stories260K/stories260K.gguf
T=$(mktemp -d "${TMPDIR:-/tmp}/affix_cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
. tests/harness.sh
# one error line "affix: error: ..." mentioning $3, exit code != 0
expect_error() {
    out=$("$AFFIX" $2 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s\n' "$out" | grep -c "affix: error:")
    if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -q -- "$3"; then ok "$1"
    else bad "$1 (exit $rc: $out)"; fi
}

# ---- generate / tokenize ----
REF="403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415 426 13 438 310"
check "generate -n 64 --ids from BOS = the stories260K reference ids" \
    '[ "$("$AFFIX" generate -m $M -n 64 --ids 2>/dev/null)" = "$REF" ]'
check "tokenize | tokenize --decode round-trips text" \
    '[ "$(printf "Once upon a time" | "$AFFIX" tokenize -m $M --no-bos | "$AFFIX" tokenize -m $M --decode)" = "Once upon a time" ]'

# ---- train: loss falls, resume is bit-exact ----
TR="train -m $M --method prefix --num-virtual-tokens 4 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en
    --seq-len 96 --batch 4 --lr 3e-2 --max-steps 12 --limit 64 --quiet"
"$AFFIX" $TR --out "$T/one" 2>/dev/null
check "train writes train_log.csv, checkpoint and a PEFT adapter" \
    '[ -f "$T/one/train_log.csv" ] && [ -f "$T/one/checkpoint.safetensors" ] && [ -f "$T/one/adapter/adapter_config.json" ] && [ -f "$T/one/adapter/adapter_model.safetensors" ]'
check "adapter_config.json is PEFT's (peft_type PREFIX_TUNING)" 'grep -q "\"peft_type\": \"PREFIX_TUNING\"" "$T/one/adapter/adapter_config.json"'
first=$(sed -n 2p "$T/one/train_log.csv" | cut -d, -f2)
last=$(tail -n 3 "$T/one/train_log.csv" | cut -d, -f2 | awk '{s += $1} END {print s / NR}')
check "training loss falls ($first -> $last)" "awk -v a=$first -v b=$last 'BEGIN { exit !(b < a) }'"
"$AFFIX" $TR --out "$T/two" --stop-at 6 2>/dev/null
check "--stop-at 6 stops after 6 steps" '[ "$(tail -n 1 "$T/two/train_log.csv" | cut -d, -f1)" = 6 ]'
"$AFFIX" $TR --out "$T/two" --resume "$T/two" 2>/dev/null
check "6 steps + resume + 6 steps = 12 steps: identical adapter bytes" \
    'cmp -s "$T/one/adapter/adapter_model.safetensors" "$T/two/adapter/adapter_model.safetensors"'
check "... and identical checkpoints and loss log" \
    'cmp -s "$T/one/checkpoint.safetensors" "$T/two/checkpoint.safetensors" && [ "$(cut -d, -f1-4 "$T/one/train_log.csv")" = "$(cut -d, -f1-4 "$T/two/train_log.csv")" ]'
# a program built without MPI, started by mpirun as one of several ranks, refuses to train alone
if "$AFFIX" version | grep -q "^MPI no"; then
    out=$(OMPI_COMM_WORLD_SIZE=2 "$AFFIX" $TR --out "$T/nompi" 2>&1); rc=$?
    check "built without MPI, started as 1 of 2 ranks: one error line, exit != 0, no output" \
        '[ $rc -ne 0 ] && [ "$(printf "%s\n" "$out" | grep -c "affix: error:.*built without MPI")" -eq 1 ] && [ ! -e "$T/nompi" ]'
else
    check "built with MPI: affix version says so (tests/test_mpi.sh runs the ranks)" '"$AFFIX" version | grep -q "^MPI yes"'
fi
# --grad-accum is not capped: 65 micro-batches differ from 64 (an old cap made them byte-identical);
# and --grad-accum 2 --batch 2 is --batch 4 (one step's loss over all its answer tokens)
GA="train -m $M --method prefix --num-virtual-tokens 2 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en
    --seq-len 64 --batch 1 --lr 3e-2 --max-steps 1 --quiet"
"$AFFIX" $GA --grad-accum 64 --out "$T/ga64" 2>/dev/null
"$AFFIX" $GA --grad-accum 65 --out "$T/ga65" 2>/dev/null
check "--grad-accum 65 is not 64 (no silent cap)" \
    '[ -f "$T/ga64/adapter/adapter_model.safetensors" ] && [ -f "$T/ga65/adapter/adapter_model.safetensors" ] && ! cmp -s "$T/ga64/adapter/adapter_model.safetensors" "$T/ga65/adapter/adapter_model.safetensors"'
expect_error "resume with another method is refused" \
    "train -m $M --method lora --r 2 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --max-steps 12 --limit 8 --out $T/three --resume $T/two --quiet" \
    "checkpoint"

# ---- eval and score ----
"$AFFIX" eval -m $M --adapter "$T/one/adapter" --task xnli --scoring loglik --limit 12 --quiet \
    --data tests/data/demo/xnli.test.en.tsv tests/data/demo/xnli.test.zh.tsv --out "$T/eval" > "$T/eval.txt" 2>/dev/null
check "eval writes predictions.jsonl, results.json, results.svg" \
    '[ -s "$T/eval/predictions.jsonl" ] && [ -s "$T/eval/results.json" ] && grep -q "<svg" "$T/eval/results.svg"'
check "predictions.jsonl has one line per example (2 x 12)" '[ "$(wc -l < "$T/eval/predictions.jsonl")" -eq 24 ]'
"$AFFIX" score --task xnli --data tests/data/demo/xnli.test.en.tsv tests/data/demo/xnli.test.zh.tsv \
    --predictions "$T/eval/predictions.jsonl" > "$T/score.txt" 2>/dev/null
check "score recomputes eval's per-language numbers from the predictions alone" \
    '[ "$(grep -E "^(en|zh) " "$T/eval.txt")" = "$(grep -E "^(en|zh) " "$T/score.txt")" ]'
"$AFFIX" eval -m $M --adapter "$T/one/adapter" --task xnli --scoring loglik --limit 12 --sample 3 --quiet \
    --data tests/data/demo/xnli.test.en.tsv --out "$T/sample" > /dev/null 2>&1
check "--sample 3 of --limit 12 scores examples 0, 4 and 8, as the full run did" \
    '[ "$(cut -d, -f1-3 "$T/sample/predictions.jsonl")" = "$(head -n 12 "$T/eval/predictions.jsonl" | sed -n "1p;5p;9p" | cut -d, -f1-3)" ]'
"$AFFIX" train -m $M --method lora --r 2 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --seq-len 64 \
    --batch 2 --grad-accum 2 --lr 3e-2 --max-steps 3 --save-init --dump-batches "$T/batches.jsonl" --out "$T/init" --quiet 2>/dev/null
"$AFFIX" generate -m $M -p "Once" -n 1 --logits "$T/base.f32" > /dev/null 2>&1
"$AFFIX" generate -m $M --adapter "$T/init/adapter-init" -p "Once" -n 1 --logits "$T/init.f32" > /dev/null 2>&1
"$AFFIX" generate -m $M --adapter "$T/init/adapter" -p "Once" -n 1 --logits "$T/trained.f32" > /dev/null 2>&1
check "--save-init: LoRA at step 0 (B = 0) gives the base model's logits; the trained adapter does not" \
    '[ -s "$T/base.f32" ] && cmp -s "$T/base.f32" "$T/init.f32" && ! cmp -s "$T/base.f32" "$T/trained.f32"'
check "--dump-batches: one line per micro-batch (3 steps x 2), each with its step, ids and labels" \
    '[ "$(wc -l < "$T/batches.jsonl")" -eq 6 ] && [ "$(grep -c "^{\"step\":[123],\"micro\":[01],\"ids\":\[\[1," "$T/batches.jsonl")" -eq 6 ] && grep -q "\"labels\":\[\[-100," "$T/batches.jsonl"'
# --task lm: per-token NLL of the contexts. The model's own greedy story (README of stories260K) is
# cheap for it, Chinese is not; the first token's NLL equals -log softmax of generate's BOS logits
printf '%s' '{"data":[{"title":"t","paragraphs":[{"context":"Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.","qas":[{"id":"a","question":"Who?","answers":[{"text":"Lily","answer_start":48}]}]}]}],"version":"1.1"}' > "$T/xquad.en.json"
"$AFFIX" eval -m $M --task lm --data "$T/xquad.en.json" tests/data/tasks/xquad.zh.json --quiet > "$T/lm.txt" 2>&1
check "eval --task lm: NLL per token < 1 on the model's own story, > 5 on Chinese" \
    'awk "/^en /{e=\$5} /^zh /{z=\$5} END{exit !(e > 0 && e < 1 && z > 5)}" "$T/lm.txt"'
"$AFFIX" eval -m $M --task lm --data "$T/xquad.en.json" --seq-len 2 --quiet --out "$T/lm2" > /dev/null 2>&1
"$AFFIX" generate -m $M -p "" -n 1 --logits "$T/bos.f32" --ids > /dev/null 2>&1
want=$(od -An -v -f -w4 "$T/bos.f32" | awk 'NR == 404 {t = $1} {x[NR] = $1; if (NR == 1 || $1 > m) m = $1} END {for (i in x) s += exp(x[i] - m); printf "%.6f", -(t - m - log(s))}')
check "eval --task lm --seq-len 2: one token scored, its NLL = -log softmax(BOS logits)[\" Once\"] ($want)" \
    'grep -q "\"tokens\":1,\"nll\":$want}" "$T/lm2/predictions.jsonl"'
DB="train -m $M --method lora --r 2 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --seq-len 64 --batch 2 --lr 3e-2 --max-steps 3 --quiet"
"$AFFIX" $DB --dump-batches "$T/db1.jsonl" --out "$T/db1" 2>/dev/null
"$AFFIX" $DB --stop-at 2 --dump-batches "$T/db2.jsonl" --out "$T/db2" 2>/dev/null
sed -n 3p "$T/db1.jsonl" >> "$T/db2.jsonl"; printf '{"step":3,"mi' >> "$T/db2.jsonl" # written past the checkpoint, then torn
"$AFFIX" $DB --resume "$T/db2" --dump-batches "$T/db2.jsonl" --out "$T/db2" 2>/dev/null
check "--dump-batches with a resume: the steps past the checkpoint and a torn line are dropped; = one run's dump" \
    '[ -s "$T/db1.jsonl" ] && cmp -s "$T/db1.jsonl" "$T/db2.jsonl"'
"$AFFIX" $DB --dump-batches "$T/db3.jsonl" --dump-only --out "$T/db3" 2>/dev/null
check "--dump-only: the same batches as the training run, and no adapter or checkpoint written" \
    'cmp -s "$T/db1.jsonl" "$T/db3.jsonl" && [ ! -e "$T/db3/adapter" ] && [ ! -e "$T/db3/checkpoint.safetensors" ]'
"$AFFIX" $DB --dump-only --out "$T/db4" 2> "$T/db4.err"; rc=$?
check "--dump-only without --dump-batches: refused with one error line" '[ $rc = 2 ] && grep -q "needs --dump-batches" "$T/db4.err"'
# probe: CKA with English per layer on parallel XNLI rows
mkdir -p "$T/copy" && cp tests/data/demo/xnli.test.en.tsv "$T/copy/xnli.test.en.tsv"
"$AFFIX" probe -m $M --task xnli --sample 16 --quiet --out "$T/probe" \
    --data tests/data/demo/xnli.test.en.tsv "$T/copy/xnli.test.en.tsv" tests/data/demo/xnli.test.zh.tsv > "$T/probe.txt" 2>&1
check "probe: 6 depths (embeddings + 5 layers); the same texts give CKA 1 at each, Chinese less" \
    '[ "$(grep -cE "^ +[0-9]+ " "$T/probe.txt")" -eq 6 ] && awk "/^ +[0-9]+ /{n++; if (\$2 < 0.999999 || \$3 >= 0.99) bad=1} END{exit !(n == 6 && !bad)}" "$T/probe.txt"'
check "probe writes results.json and a heat map" '[ -s "$T/probe/results.json" ] && grep -q "<svg" "$T/probe/cka.svg"'
"$AFFIX" probe -m $M --task xnli --sample 16 --quiet --compare base "$T/one/adapter" \
    --data tests/data/demo/xnli.test.en.tsv tests/data/demo/xnli.test.zh.tsv > "$T/probe2.txt" 2>&1
"$AFFIX" probe -m $M --task xnli --sample 16 --quiet --adapter "$T/one/adapter" \
    --data tests/data/demo/xnli.test.en.tsv tests/data/demo/xnli.test.zh.tsv > "$T/probe3.txt" 2>&1
a=$(awk '/^ +5 /{print $3}' "$T/probe.txt"); b=$(awk '/^ +5 /{print $2}' "$T/probe3.txt"); d=$(awk '/^ +5 /{print $2}' "$T/probe2.txt")
check "probe --compare base ADAPTER: layer 5 difference = adapter - base ($b - $a = $d)" \
    'awk -v a="$a" -v b="$b" -v d="$d" "BEGIN{x = b - a - d; exit !(d != \"\" && x < 0.0015 && x > -0.0015)}"'
"$AFFIX" probe -m $M --task xnli --sample 16 --quiet --out "$T/p16" \
    --data tests/data/demo/xnli.test.en.tsv tests/data/demo/xnli.test.zh.tsv > /dev/null 2>&1
got=$(grep '"zh"' "$T/p16/results.json" | sed 's/.*\[\([^,]*\),.*/\1/')
want=$(sed -n 's/.*"layer0_cka_en_zh": *\([0-9.eE+-]*\).*/\1/p' tests/data/probe/stories260k.json)
check "probe: layer 0 CKA(en, zh) = numpy on the GGUF's embedding rows ($got vs $want; TOL_CKA 1e-12 of tests/tolerances.h)" \
    'awk -v g="$got" -v w="$want" "BEGIN{d = (g - w) / w; exit !(g != \"\" && d < 1e-12 && d > -1e-12)}"'
expect_error "probe without an English file" "probe -m $M --task xnli --data tests/data/demo/xnli.test.zh.tsv" "English"
"$AFFIX" train -m $M --method lora --r 2 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --seq-len 64 \
    --batch 2 --max-steps 1 --out "$T/mem" > /dev/null 2> "$T/mem.txt"
check "train prints its planned memory before it trains (weights of stories260K: 0.00 GB, batch 2 x 64)" \
    'grep -q "^affix: planned memory: model weights 0.00 GB, .* (batch 2 x 64 tokens" "$T/mem.txt"'
# --labels yes-no: NLI with one-token answers, trained and scored by log-likelihood
"$AFFIX" train -m $M --method prefix --num-virtual-tokens 4 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en \
    --labels yes-no --seq-len 160 --batch 2 --max-steps 2 --out "$T/yn" --quiet 2>/dev/null
"$AFFIX" eval -m $M --adapter "$T/yn/adapter" --task xnli --scoring loglik --labels yes-no --limit 6 --quiet \
    --data tests/data/demo/xnli.test.en.tsv --out "$T/yne" > /dev/null 2>&1
check "--labels yes-no: the predictions are yes / maybe / no" \
    '[ "$(grep -cE "\"prediction\":\"(yes|maybe|no)\"" "$T/yne/predictions.jsonl")" -eq 6 ]'
expect_error "--labels with another value" "train -m $M --method lora --task nli --data tests/data/demo/xnli.dev.en.tsv --labels maybe --out $T/ynx" "labels"
# hybrids: lora+prefix trained together, saved as one PEFT directory per part + affix_hybrid.json
HY="train -m $M --method lora+prefix --r 2 --num-virtual-tokens 4 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --seq-len 64 --batch 2 --lr 3e-2 --max-steps 4 --quiet"
"$AFFIX" $HY --save-init --out "$T/hy" 2>/dev/null
check "hybrid lora+prefix: adapter/lora/, adapter/prefix/ (PEFT) and affix_hybrid.json naming them" \
    '[ -s "$T/hy/adapter/lora/adapter_model.safetensors" ] && [ -s "$T/hy/adapter/prefix/adapter_config.json" ] && grep -q "\"parts\": \[\"lora\", \"prefix\"\]" "$T/hy/adapter/affix_hybrid.json"'
"$AFFIX" generate -m $M --adapter "$T/hy/adapter-init" -p "Once" -n 1 --logits "$T/hy0.f32" > /dev/null 2>&1
"$AFFIX" generate -m $M --adapter "$T/hy/adapter-init/prefix" -p "Once" -n 1 --logits "$T/hy0p.f32" > /dev/null 2>&1
"$AFFIX" generate -m $M --adapter "$T/hy/adapter" -p "Once" -n 1 --logits "$T/hy.f32" > /dev/null 2>&1
"$AFFIX" generate -m $M --adapter "$T/hy/adapter/prefix" -p "Once" -n 1 --logits "$T/hyp.f32" > /dev/null 2>&1
check "hybrid at step 0 (LoRA B = 0) = its prefix alone; trained, the LoRA part changes the logits" \
    '[ -s "$T/hy0.f32" ] && cmp -s "$T/hy0.f32" "$T/hy0p.f32" && [ -s "$T/hy.f32" ] && ! cmp -s "$T/hy.f32" "$T/hyp.f32"'
"$AFFIX" $HY --stop-at 2 --out "$T/hy2" 2>/dev/null
"$AFFIX" $HY --resume "$T/hy2" --out "$T/hy2" 2>/dev/null
check "hybrid: 2 steps + resume + 2 steps = 4 steps, both parts byte for byte" \
    'cmp -s "$T/hy/adapter/lora/adapter_model.safetensors" "$T/hy2/adapter/lora/adapter_model.safetensors" && cmp -s "$T/hy/adapter/prefix/adapter_model.safetensors" "$T/hy2/adapter/prefix/adapter_model.safetensors"'
expect_error "hybrid with full fine-tuning is refused" "train -m $M --method lora+full --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --out $T/hyx --quiet" "hybrid"
expect_error "a method named twice is refused" "train -m $M --method lora+lora --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --out $T/hyx --quiet" "twice"
expect_error "an option no part takes is refused" "train -m $M --method lora+prefix --num-virtual-tokens 4 --adapter-len 3 --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --out $T/hyx --quiet" "adapter-len"
printf '{"parts": ["lora", "../x"]}' > "$T/badhy.json"; mkdir -p "$T/badhy" && mv "$T/badhy.json" "$T/badhy/affix_hybrid.json"
expect_error "a hybrid manifest naming a path is refused" "generate -m $M --adapter $T/badhy -p x -n 1" "parts"
"$AFFIX" eval -m $M --task mgsm --data tests/data/tasks/mgsm_en.tsv --limit 2 --max-new-tokens 8 --quiet > "$T/mgsm.txt" 2>&1
check "eval by generation (mgsm) runs and prints a table" 'grep -q "^en " "$T/mgsm.txt"'

# ---- bad input ----
head -c 3000 $M > "$T/trunc.gguf"
expect_error "truncated GGUF: one error line naming the file" "info -m $T/trunc.gguf" "trunc.gguf"
expect_error "missing model file" "generate -m $T/nope.gguf -n 2 --ids" "nope.gguf"
printf 'genre\tlabel\tsentence1_en\tsentence2_en\n' > "$T/bad.tsv"
printf 'x\tmaybe\tA premise.\tA hypothesis.\n' >> "$T/bad.tsv"
expect_error "--strict: an unknown label is FILE:LINE fatal" \
    "train -m $M --method prompt --num-virtual-tokens 2 --task nli --data $T/bad.tsv --lang en --out $T/bad --strict --quiet" "bad.tsv:2"
check "... and no output directory content is left behind" '[ ! -e "$T/bad/adapter" ] && [ ! -e "$T/bad/checkpoint.safetensors" ]'
out=$(printf '\377\376bad' | "$AFFIX" tokenize -m $M 2>&1); rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "affix: error:.*UTF-8"; then ok "invalid UTF-8 text is refused with one line"; else bad "invalid UTF-8 text (exit $rc: $out)"; fi
expect_error "an option of another method is refused" "params --config tools/configs/llama-3.2-1b.json --method lora --num-virtual-tokens 3" "num-virtual-tokens"
expect_error "an adapter made for another model is refused, naming both shapes" \
    "eval -m $M --adapter tests/data/peft/from_peft/lora_qv --task xnli --data tests/data/demo/xnli.test.en.tsv --limit 1" "from_peft/lora_qv"
expect_error "an unknown task is refused" "eval -m $M --task nope --data tests/data/demo/xnli.test.en.tsv" "nope"

# ---- frozen weights kept in their blocks (--weights file, the default) against converted (f32) ----
# stories260K-quant.gguf: Q8_0 / Q5_0 / Q4_0 matrices (gguf-py's quantizer), ffn_down F32. Every
# product on a kept matrix is the fp32 product on the decoded one, so the outputs are the same bytes.
MQ=tests/data/stories260K/stories260K-quant.gguf
check "generate: --weights file and f32 give the same ids and logits" \
    '[ "$("$AFFIX" generate -m $MQ -n 24 --ids --logits $T/lq_file 2>/dev/null)" = "$("$AFFIX" generate -m $MQ -n 24 --ids --weights f32 --logits $T/lq_f32 2>/dev/null)" ] && cmp -s $T/lq_file $T/lq_f32'
for meth in "prefix --num-virtual-tokens 4" "prompt --num-virtual-tokens 4" "llama-adapter --adapter-len 4 --adapter-layers 2" "lora --r 2 --targets q,k,v,o,gate,up,down"; do
    name=${meth%% *}
    QT="train -m $MQ --method $meth --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --seq-len 64 --batch 2 --lr 3e-2 --max-steps 4 --limit 16 --quiet"
    "$AFFIX" $QT --out "$T/q_$name" 2>/dev/null
    "$AFFIX" $QT --weights f32 --out "$T/q32_$name" 2>/dev/null
    check "train $name: --weights file = f32, bit for bit (adapter; losses and gradient norms)" \
        '[ -s "$T/q_$name/adapter/adapter_model.safetensors" ] && cmp -s "$T/q_$name/adapter/adapter_model.safetensors" "$T/q32_$name/adapter/adapter_model.safetensors" && [ "$(cut -d, -f1-4 "$T/q_$name/train_log.csv")" = "$(cut -d, -f1-4 "$T/q32_$name/train_log.csv")" ]'
done
EV="eval -m $MQ --adapter $T/q_lora/adapter --task xnli --data tests/data/demo/xnli.test.en.tsv --limit 8 --scoring loglik --quiet"
"$AFFIX" $EV --out "$T/qe_file" 2>/dev/null; "$AFFIX" $EV --weights f32 --out "$T/qe_f32" 2>/dev/null
check "eval: --weights file = f32 (the same predictions)" \
    '[ -s "$T/qe_file/predictions.jsonl" ] && cmp -s "$T/qe_file/predictions.jsonl" "$T/qe_f32/predictions.jsonl"'
"$AFFIX" train -m $MQ --method full --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en --seq-len 64 --batch 2 --lr 1e-3 --max-steps 2 --limit 4 --quiet --out "$T/q_full" 2>/dev/null
check "full fine-tuning converts the weights by default" '[ -s "$T/q_full/adapter/model.safetensors" ]'
expect_error "full fine-tuning with --weights file is refused" \
    "train -m $MQ --method full --weights file --task nli --data tests/data/demo/xnli.dev.en.tsv --max-steps 1 --out $T/q_fullx" "weights f32"
expect_error "--weights with another value is refused" "generate -m $MQ --weights f16" "f32 or file"

finish
