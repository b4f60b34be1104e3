#!/bin/sh
# test_hostile.sh — the affix program against hostile input (issue 13), generated rather than
# hand-listed: absurd sizes written into copies of the tiny config/GGUF/adapter files of tests/data,
# truncations of every file kind, huge and malformed command-line numbers, unknown options,
# lying tokenizer ids, empty vocabulary strings, checkpoint counters out of range, FIFOs, a SQuAD
# file of \u-escaped ids, runaway learning rates and the crash-integrity rules of affix train.
#
# A hostile case passes when affix exits non-zero (not by a signal), within 10 s, with stderr exactly
# one line "affix: error: ..." that names what the case says (the file, the field, the option), and
# (where it says so) leaves no output file behind. Under the sanitizer build (make test SAN=1) an
# ASan/UBSan/LSan report makes stderr longer than one line, so every such report is a failure.
# usage: tests/test_hostile.sh [BUILD_DIR]      Ends with "N passed, M failed".
BUILD=${1:-${AFFIX_BUILD:-build}}
AFFIX="$BUILD/affix"
D=tests/data
M=$D/stories260K/stories260K.gguf
HF=$D/tiny-hf/f32
T=$(mktemp -d "${TMPDIR:-/tmp}/affix_hostile.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "  FAIL  $1"; }
ulimit -c 0 2>/dev/null
# the plain build runs under a 16 GiB address-space limit, so that an allocation taken from an
# untrusted size fails fast instead of paging (ASan reserves its shadow memory: no limit there);
# two threads are plenty for the tiny models here
SAN=0
grep -q __asan_init "$AFFIX" 2>/dev/null && SAN=1
[ $SAN -eq 0 ] && ulimit -v 16777216 2>/dev/null
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=1
export OMP_NUM_THREADS OPENBLAS_NUM_THREADS

# hostile NAME MENTION CMD...: the one-line error must contain MENTION (a fixed string; "" = any).
# $NOFILE, when set, is a path that must not exist afterwards.
hostile() {
    name=$1 mention=$2
    shift 2
    [ -n "$NOFILE" ] && rm -rf "$NOFILE"
    timeout 10 "$AFFIX" "$@" > "$T/stdout" 2> "$T/stderr" < /dev/null
    rc=$?
    lines=$(wc -l < "$T/stderr" | tr -d ' ')
    first=$(head -n 1 "$T/stderr")
    why=""
    if [ $rc -eq 124 ]; then why="timed out after 10 s"
    elif [ $rc -ge 128 ]; then why="killed by signal $((rc - 128))"
    elif [ $rc -eq 0 ]; then why="exit 0"
    elif [ "$lines" -ne 1 ]; then why="$lines lines on stderr"
    else case $first in "affix: error: "*) ;; *) why="stderr is not 'affix: error: ...'" ;; esac
    fi
    if [ -z "$why" ] && [ -n "$mention" ] && ! printf '%s' "$first" | grep -qF -- "$mention"; then
        why="the error does not name '$mention'"
    fi
    if [ -z "$why" ] && [ -n "$NOFILE" ] && [ -e "$NOFILE" ]; then why="$NOFILE was left behind"; fi
    if [ -z "$why" ]; then ok; else bad "$name: $why (exit $rc): $(head -c 300 "$T/stderr" | tr '\n' '|')"; fi
}
# calm NAME CMD...: must succeed (exit 0) within 10 s with nothing on stderr but affix's own lines
calm() {
    name=$1
    shift
    timeout 10 "$AFFIX" "$@" > "$T/stdout" 2> "$T/stderr" < /dev/null
    rc=$?
    if [ $rc -eq 0 ] && ! grep -qv "^affix: " "$T/stderr"; then ok
    else bad "$name: exit $rc: $(head -c 300 "$T/stderr" | tr '\n' '|')"; fi
}
check() { if eval "$2"; then ok; else bad "$1"; fi; }

# ---- binary writing helpers ----
byte() { printf "\\$(printf %03o "$1")"; }
le32() { v=$1; for _ in 1 2 3 4; do byte $((v & 255)); v=$((v >> 8)); done; }
le64() { le32 $(($1 & 4294967295)); le32 $((($1 >> 32) & 4294967295)); }
gstr() { le64 "$(printf %s "$1" | wc -c)"; printf %s "$1"; }
# patch FILE OFFSET: stdin replaces the bytes at OFFSET
patch_at() { dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
# the offset of the u32 value of GGUF metadata key $2 in $1 (the key, its u32 type 4, the value)
gguf_u32_at() {
    for off in $(grep -obUa -- "$2" "$1" | cut -d: -f1); do
        k=$((off + ${#2}))
        if [ "$(od -An -t u4 -j $k -N 4 "$1" | tr -d ' ')" = 4 ]; then echo $((k + 4)); return; fi
    done
}
# st_meta FILE KEY VALUE: rewrite one metadata value of a safetensors file (header length updated)
st_meta() {
    n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    head -c $((8 + n)) "$1" | tail -c "$n" | sed "s/\"$2\":\"[^\"]*\"/\"$2\":\"$3\"/; s/ *\$//" > "$T/hdr"
    m=$(wc -c < "$T/hdr")
    while [ $((m % 8)) -ne 0 ]; do printf ' ' >> "$T/hdr"; m=$((m + 1)); done
    { le64 "$m"; cat "$T/hdr"; tail -c +$((9 + n)) "$1"; } > "$T/st.new" && mv "$T/st.new" "$1"
}
# set_json FILE KEY VALUE: the value of "KEY": in a pretty-printed JSON file
set_json() { sed "s/\"$2\": [^,]*\(,*\)\$/\"$2\": $3\1/" "$1" > "$1.new" && mv "$1.new" "$1"; }

# ---- 1. sizes: config fields x absurd values, before any allocation ----
echo "=== config.json sizes"
for f in vocab_size hidden_size intermediate_size num_hidden_layers num_attention_heads num_key_value_heads head_dim max_position_embeddings; do
    for v in 2147483647 1000000000 1073741824 100000000 0 -1 1.5 '"8"' 1e300; do
        rm -rf "$T/m" && cp -r $HF "$T/m"
        set_json "$T/m/config.json" $f "$v"
        hostile "info, config.json $f = $v" "$f" info -m "$T/m"
    done
done
rm -rf "$T/m" && cp -r $HF "$T/m"
set_json "$T/m/config.json" hidden_size 64
hostile "config.json hidden_size against the file's tensors" "hidden_size = 64" info -m "$T/m"
set_json "$T/m/config.json" hidden_size 32
set_json "$T/m/config.json" intermediate_size 2147483647
hostile "affix config, intermediate_size 2^31-1" "intermediate_size" config "$T/m/config.json"

echo "=== GGUF metadata sizes"
for k in llama.context_length llama.embedding_length llama.feed_forward_length llama.attention.head_count \
    llama.attention.head_count_kv llama.block_count llama.rope.dimension_count; do
    for v in 2147483647 1000000000 1073741824 0 4294967295; do
        [ $k = llama.context_length ] && [ $v = 0 ] && continue
        cp $M "$T/g.gguf"
        off=$(gguf_u32_at "$T/g.gguf" $k)
        [ -z "$off" ] && { bad "GGUF key $k not found"; continue; }
        le32 $v | patch_at "$T/g.gguf" "$off"
        hostile "info, GGUF $k = $v" "$k" info -m "$T/g.gguf"
    done
done
cp $M "$T/g.gguf"
le32 4294967295 | patch_at "$T/g.gguf" "$(gguf_u32_at "$T/g.gguf" tokenizer.ggml.bos_token_id)"
hostile "tokenize, GGUF bos_token_id = 2^32-1" "bos" tokenize -m "$T/g.gguf"

echo "=== adapter_config.json sizes"
for c in "lora_qv r" "prompt num_virtual_tokens" "prefix num_virtual_tokens" "prompt token_dim" \
    "adaption adapter_len" "adaption adapter_layers"; do
    a=${c%% *} f=${c#* }
    for v in 1000000000 2147483647 0 -1 1e300; do
        rm -rf "$T/ad" && cp -r $D/peft/from_peft/$a "$T/ad"
        set_json "$T/ad/adapter_config.json" $f "$v"
        hostile "generate --adapter $a, $f = $v" "$f" generate -m $D/peft/base --adapter "$T/ad" -n 1 --ids
    done
done

echo "=== command-line numbers"
NOFILE="$T/logits.bin"
for n in 2147483646 2147483647 4294967297 -1 1e9 "" 3x 99999999999999999999; do
    hostile "generate -n '$n'" "-n" generate -m $M -n "$n" --ids --logits "$T/logits.bin"
done
NOFILE=
for c in "--seed -1" "--seed 18446744073709551616" "--seed 1.5" "--temp -1" "--temp nan" "--temp inf" \
    "--top-p 0" "--top-p 1.5" "--top-p nan"; do
    hostile "generate $c" "${c% *}" generate -m $M -n 4 --ids $c
done
TR="train -m $M --task nli --data $D/demo/xnli.dev.en.tsv --lang en --limit 8 --batch 4 --max-steps 2 --quiet"
for c in "--seq-len 1000000000" "--seq-len 99999999999" "--seq-len 4000" "--batch 0" "--batch 100000" \
    "--grad-accum 0" "--grad-accum 99999999999" "--lr nan" "--lr -1" "--lr 1e309" "--epochs 1e3" \
    "--max-steps -5" "--seed -1" "--warmup x" "--clip inf"; do
    NOFILE="$T/tr/checkpoint.safetensors" hostile "train $c" "${c% *}" $TR --method prefix --num-virtual-tokens 4 --out "$T/tr" $c
done
for c in "--r 1000000000:r = " "--r 0:r" "--alpha nan:alpha"; do
    hostile "train lora ${c%:*}" "${c#*:}" $TR --method lora --out "$T/tr" ${c%:*}
done
for c in "--num-virtual-tokens 1000000000" "--num-virtual-tokens 2048" "--num-virtual-tokens -3"; do
    hostile "train prefix $c" "num" $TR --method prefix --out "$T/tr" $c
done
hostile "params prefix --encoder-hidden-size 1e9" "encoder_hidden_size" params --config $HF/config.json --method prefix \
    --num-virtual-tokens 2 --prefix-projection --encoder-hidden-size 1000000000
EV="eval -m $M --task xnli --data $D/demo/xnli.test.en.tsv --limit 1 --quiet"
for c in "--seq-len 1000000" "--seq-len 99999999999" "--limit 0" "--max-new-tokens 99999999" "--temp -1" "--seed -1"; do
    hostile "eval $c" "${c% *}" $EV $c
done

echo "=== unknown options"
hostile "generate --bogus (last)" "unknown option" generate -m $M --bogus
hostile "generate --bogus 3" "unknown option" generate -m $M --bogus 3
hostile "eval --bogus (last)" "unknown option" $EV --bogus
hostile "score --bogus" "unknown option" score --task xnli --data $D/demo/xnli.test.en.tsv --bogus
hostile "tokenize --bogus" "unknown option" tokenize -m $M --bogus
hostile "info --bogus" "unknown option" info -m $M --bogus
hostile "train --bogus" "unknown option" $TR --method prefix --num-virtual-tokens 2 --out "$T/tr" --bogus

echo "=== tokenizer.json ids"
tokjson() { # FILE ID-OF-b ADDED-ID
    printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": %s}, "merges": []},\n "added_tokens": [{"id": %s, "content": "<s>", "special": true}]}\n' "$2" "$3" > "$1"
}
for id in 1073741824 1073741823 2147483647 16777216 3; do
    tokjson "$T/tok.json" $id 1
    hostile "tokenizer.json vocab id $id" "token id" tokenize -m "$T/tok.json"
    tokjson "$T/tok.json" 1 $id
    [ $id = 3 ] || hostile "tokenizer.json added_tokens id $id" "token id" tokenize -m "$T/tok.json"
done
tokjson "$T/tok.json" 1 2
printf 'ab' > "$T/ab.txt"
check "a small valid tokenizer.json still loads" '"$AFFIX" tokenize -m "$T/tok.json" --no-bos < "$T/ab.txt" > /dev/null 2>&1'

echo "=== empty vocabulary strings (GGUF)"
gguf_tok() { # OUT TOKEN...
    out=$1
    shift
    {
        printf GGUF; le32 3; le64 0; le64 4
        gstr tokenizer.ggml.model; le32 8; gstr llama
        gstr tokenizer.ggml.bos_token_id; le32 4; le32 1
        gstr tokenizer.ggml.tokens; le32 9; le32 8; le64 $#
        for t in "$@"; do gstr "$t"; done
        gstr tokenizer.ggml.scores; le32 9; le32 6; le64 $#
        for t in "$@"; do le32 0; done
    } > "$out"
}
gguf_tok "$T/e.gguf" "" "" ""
hostile "a GGUF vocabulary of empty strings" "empty" tokenize -m "$T/e.gguf"
gguf_tok "$T/e2.gguf" "" "a" "b" "ab"
check "a GGUF vocabulary with one empty token encodes without a sanitizer report" \
    'printf "ab" | timeout 10 "$AFFIX" tokenize -m "$T/e2.gguf" --no-bos > /dev/null 2> "$T/err" && [ ! -s "$T/err" ]'
check "... and decodes the empty token" \
    'printf "0 1 0 2 0" | timeout 10 "$AFFIX" tokenize -m "$T/e2.gguf" --decode > "$T/dec" 2> "$T/err" && [ ! -s "$T/err" ] && [ "$(cat "$T/dec")" = ab ]'

echo "=== FIFOs (never waited on)"
mkfifo "$T/fifo"
hostile "info -m FIFO" "fifo" info -m "$T/fifo"
hostile "tokenize -m FIFO" "fifo" tokenize -m "$T/fifo"
hostile "config FIFO" "fifo" config "$T/fifo"
hostile "train --data FIFO" "fifo" train -m $M --task nli --lang en --method prefix --num-virtual-tokens 2 --out "$T/tr" --data "$T/fifo"
hostile "score --data FIFO" "fifo" score --task xnli --data "$T/fifo" --predictions "$T/fifo"
printf '{"lang":"en","id":"1","prediction":"x"}\n' > "$T/p.jsonl"
hostile "score --predictions FIFO" "fifo" score --task xnli --data $D/demo/xnli.test.en.tsv --predictions "$T/fifo"
rm -rf "$T/lf" && mkdir "$T/lf" && mkfifo "$T/lf/train_log.csv"
hostile "train whose train_log.csv is a FIFO" "train_log.csv" $TR --method prefix --num-virtual-tokens 2 --out "$T/lf"
rm -rf "$T/m" && cp -r $HF "$T/m" && rm "$T/m/config.json" && mkfifo "$T/m/config.json"
hostile "a model directory whose config.json is a FIFO" "config.json" info -m "$T/m"

echo "=== SQuAD ids written with \\u escapes (no quadratic search, no quadratic scoring)"
awk -v n=20000 'BEGIN { printf "{\"data\":[{\"title\":\"t\",\"paragraphs\":[{\"context\":\"alpha beta\",\"qas\":[";
    for (i = 0; i < n; i++) printf "%s{\"id\":\"\\u0069\\u0064%d\",\"question\":\"q?\",\"answers\":[{\"text\":\"alpha\",\"answer_start\":0}]}", i ? "," : "", i;
    printf "]}]}]}\n" }' > "$T/xquad.en.json"
awk -v n=20000 'BEGIN { for (i = n - 1; i >= 0; i--) printf "{\"lang\":\"en\",\"id\":\"id%d\",\"prediction\":\"alpha\"}\n", i }' > "$T/pred.jsonl"
calm "score of 20000 \\u-escaped SQuAD ids within 10 s" score --task xquad --data "$T/xquad.en.json" --predictions "$T/pred.jsonl"
check "... scoring every one of them (EM 100)" 'grep -q "^en .*100" "$T/stdout"'

echo "=== truncations"
sz=$(wc -c < $M)
for k in 1 2 3 5 8 11 13 15; do
    head -c $((sz * k / 16)) $M > "$T/cut.gguf"
    hostile "info, GGUF cut at $k/16" "cut.gguf" info -m "$T/cut.gguf"
done
sz=$(wc -c < $HF/model.safetensors)
for k in 0 1 3 7 8 100 1000 $((sz / 2)) $((sz - 1)); do
    rm -rf "$T/m" && cp -r $HF "$T/m" && head -c $k $HF/model.safetensors > "$T/m/model.safetensors"
    hostile "info, model.safetensors cut at $k bytes" "model.safetensors" info -m "$T/m"
done
sz=$(wc -c < $HF/config.json)
for k in 0 1 50 $((sz / 2)) $((sz - 3)); do
    head -c $k $HF/config.json > "$T/cfg.json"
    hostile "config.json cut at $k bytes" "cfg.json" config "$T/cfg.json"
done
sz=$(wc -c < $D/vocab/synthetic.json)
for k in 0 1 100 $((sz / 3)) $((sz - 2)); do
    head -c $k $D/vocab/synthetic.json > "$T/t.json"
    hostile "tokenizer.json cut at $k bytes" "t.json" tokenize -m "$T/t.json"
done
sz=$(wc -c < $D/peft/from_peft/lora_qv/adapter_model.safetensors)
for k in 10 $((sz / 2)) $((sz - 1)); do
    rm -rf "$T/ad" && cp -r $D/peft/from_peft/lora_qv "$T/ad"
    head -c $k $D/peft/from_peft/lora_qv/adapter_model.safetensors > "$T/ad/adapter_model.safetensors"
    hostile "adapter_model.safetensors cut at $k bytes" "adapter_model.safetensors" generate -m $D/peft/base --adapter "$T/ad" -n 1 --ids
done
# a NaN written into the first value of a model's and an adapter's tensor data: refused by name
put_nan() { # FILE: the first float32 of the data region becomes NaN
    hl=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    printf '\000\000\300\177' | dd of="$1" bs=1 seek=$((8 + hl)) conv=notrunc 2>/dev/null
}
rm -rf "$T/m" && cp -r $HF "$T/m" && put_nan "$T/m/model.safetensors"
hostile "a NaN in a model weight" "non-finite" generate -m "$T/m" -n 1 --ids
rm -rf "$T/ad" && cp -r $D/peft/from_peft/lora_qv "$T/ad" && put_nan "$T/ad/adapter_model.safetensors"
hostile "a NaN in an adapter tensor" "non-finite" generate -m $D/peft/base --adapter "$T/ad" -n 1 --ids
rm -rf "$T/m" && cp -r $HF "$T/m"
set_json "$T/m/config.json" model_type '"lla\\u0000ma"'
hostile "config.json with a \\u0000 escape" "u0000" info -m "$T/m"
sz=$(wc -c < $D/tasks/squad-train.json)
for k in 1 $((sz / 2)) $((sz - 2)); do
    head -c $k $D/tasks/squad-train.json > "$T/sq.json"
    hostile "SQuAD file cut at $k bytes" "sq.json" train -m $M --method prefix --num-virtual-tokens 2 --task squad --data "$T/sq.json" --out "$T/tr" --quiet
done

echo "=== checkpoint metadata"
CK="train -m $M --method prefix --num-virtual-tokens 4 --task nli --data $D/demo/xnli.dev.en.tsv --lang en --limit 16 --batch 4 --seq-len 64 --lr 3e-2 --quiet"
"$AFFIX" $CK --max-steps 2 --out "$T/ck" 2>/dev/null
check "a 2-step run writes a checkpoint" '[ -f "$T/ck/checkpoint.safetensors" ]'
for c in "index -5" "index 99999999999999999999" "index 1000" "step -1" "step 1000000000000000" "epoch -1" "epoch 999999" "perm_seed -1"; do
    rm -rf "$T/ck2" && cp -r "$T/ck" "$T/ck2"
    st_meta "$T/ck2/checkpoint.safetensors" ${c% *} ${c#* }
    hostile "resume from a checkpoint with $c" "${c% *}" $CK --max-steps 4 --out "$T/ck3" --resume "$T/ck2"
done
sz=$(wc -c < "$T/ck/checkpoint.safetensors")
for k in 8 $((sz / 2)) $((sz - 4)); do
    rm -rf "$T/ck2" && cp -r "$T/ck" "$T/ck2"
    head -c $k "$T/ck/checkpoint.safetensors" > "$T/ck2/checkpoint.safetensors"
    hostile "resume from a checkpoint cut at $k bytes" "checkpoint.safetensors" $CK --max-steps 4 --out "$T/ck3" --resume "$T/ck2"
done

echo "=== runaway training"
for mth in "prefix --num-virtual-tokens 4" "prompt --num-virtual-tokens 4" "lora --r 2"; do
    rm -rf "$T/run"
    NOFILE="$T/run/checkpoint.safetensors" hostile "--lr 1e30 with ${mth%% *} stops" "step 1" \
        $TR --method $mth --lr 1e30 --out "$T/run"
done
# a good step 1 (warmup: its learning rate is 0), then a diverging step 2: --save-every 1 kept step 1
rm -rf "$T/run"
hostile "a divergence after a save names the checkpoint that holds the last good state" "$T/run/checkpoint.safetensors (step 1)" \
    $TR --method prefix --num-virtual-tokens 4 --lr 1e30 --warmup 1000 --schedule linear --save-every 1 --out "$T/run"
check "... and that checkpoint is good: a resume from it trains on" \
    '"$AFFIX" $TR --method prefix --num-virtual-tokens 4 --lr 1e-3 --max-steps 2 --out "$T/run2" --resume "$T/run" 2>/dev/null'
cp "$T/run/checkpoint.safetensors" "$T/good.safetensors"
hostile "resuming in place with --lr 1e30 stops" "the last good state is" \
    $TR --method prefix --num-virtual-tokens 4 --lr 1e30 --max-steps 3 --out "$T/run" --resume "$T/run"
check "... and leaves the good checkpoint as it was" 'cmp -s "$T/good.safetensors" "$T/run/checkpoint.safetensors"'

echo "=== crash integrity"
LG="train -m $M --method prefix --num-virtual-tokens 4 --task nli --data $D/demo/xnli.dev.en.tsv --lang en --limit 16 --batch 2 --seq-len 64 --lr 3e-2 --max-steps 8 --quiet"
"$AFFIX" $LG --stop-at 4 --out "$T/lg" 2>/dev/null
# a crash after steps 5 and 6 were logged but before their checkpoint: the log is ahead of it
tail -n 2 "$T/lg/train_log.csv" | sed 's/^3,/5,/; s/^4,/6,/' >> "$T/lg/train_log.csv"
printf '7,0.5' >> "$T/lg/train_log.csv" # and a torn row
: > "$T/lg/.checkpoint.safetensors.tmp-999999999-1"
: > "$T/lg/adapter/.adapter_model.safetensors.tmp-999999999-2"
"$AFFIX" $LG --out "$T/lg" --resume "$T/lg" 2>/dev/null
check "resume in place: train_log.csv holds each step once (rows after the checkpoint dropped)" \
    '[ "$(sed 1d "$T/lg/train_log.csv" | cut -d, -f1 | tr "\n" " ")" = "1 2 3 4 5 6 7 8 " ]'
check "stale .tmp- files of a killed save are removed at start" \
    '[ ! -e "$T/lg/.checkpoint.safetensors.tmp-999999999-1" ] && [ ! -e "$T/lg/adapter/.adapter_model.safetensors.tmp-999999999-2" ]'
if [ -w /dev/full ]; then
    rm -rf "$T/full" && mkdir "$T/full" && ln -s /dev/full "$T/full/train_log.csv"
    hostile "train_log.csv on a full disk: the first write's error stops the run" "train_log.csv" $LG --out "$T/full"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
