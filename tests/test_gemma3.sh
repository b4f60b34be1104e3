#!/bin/sh
# test_gemma3.sh — affix on the real Gemma 3 270M GGUF against Hugging Face (make test-gemma3).
#
#   sh tests/test_gemma3.sh [GGUF]      GGUF: default the path tools/fetch_gemma3.sh prints
#   env: AFFIX (default build/affix), TOK_TEST (default build/test_gemma3_tok),
#        GEMMA3_ONLY=tokenizer (skip the generation part)
#
# (1) tokenizer: tests/test_gemma3_tok.c on tests/data/gemma3/tokenizer.json (every text encoded with
#     BOS must give HF's ids exactly; decodes too) and the prompts of greedy.json (HF's prompt ids).
# (2) generation: for each prompt of tests/data/gemma3/greedy.json, `affix generate -p PROMPT -n 16
#     --ids` (greedy, BOS + prompt) must print HF's 16 ids (float32 transformers, eager). On a
#     difference the message gives HF's best-minus-second logit gap at that step: a gap of ~1e-3 or
#     less is a near-tie a float32 reimplementation may flip; a large one is a bug.
# Run from the repository root. Ends with "N passed, M failed"; exits 1 on any failure.
AFFIX=${AFFIX:-build/affix}
TOK_TEST=${TOK_TEST:-build/test_gemma3_tok}
DATA=tests/data/gemma3
pass=0
fail=0

if [ $# -ge 1 ]; then
    gguf=$1
else
    gguf=$(sh tools/fetch_gemma3.sh) || { echo "cannot fetch the Gemma 3 GGUF (tools/fetch_gemma3.sh)"; echo "0 passed, 1 failed"; exit 1; }
fi
if [ ! -f "$gguf" ]; then
    echo "$gguf: no such file (make gemma3 fetches it)"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- (1) tokenizer ------------------------------------------------------------------------------
echo "=== tokenizer: $TOK_TEST $gguf"
out=$("$TOK_TEST" "$gguf" "$DATA/tokenizer.json" "$DATA/greedy.json" 2>&1)
rc=$?
printf '%s\n' "$out"
last=$(printf '%s\n' "$out" | tail -n 1)
p=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
f=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
if [ -z "$p" ]; then
    echo "!!! $TOK_TEST did not end with 'N passed, M failed' (exit code $rc)"
    p=0 f=1
elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "!!! $TOK_TEST exited with code $rc"
    f=1
fi
pass=$((pass + p))
fail=$((fail + f))

# ---- (2) greedy generation ----------------------------------------------------------------------
if [ "${GEMMA3_ONLY:-}" != tokenizer ]; then
    echo "=== generation: $AFFIX generate -m $gguf -p PROMPT -n 16 --ids (vs $DATA/greedy.json)"
    list=$("$TOK_TEST" --list-greedy "$DATA/greedy.json") || { list=""; echo "FAIL cannot list the prompts of $DATA/greedy.json"; fail=$((fail + 1)); }
    tab=$(printf '\t')
    tmp=$(mktemp "${TMPDIR:-/tmp}/affix-gemma3.XXXXXX") || exit 1
    printf '%s\n' "$list" >"$tmp"
    while IFS="$tab" read -r lang prompt want gaps; do
        [ -n "$lang" ] || continue
        got=$("$AFFIX" generate -m "$gguf" -p "$prompt" -n 16 --ids 2>"$tmp.err")
        rc=$?
        if [ "$rc" -ne 0 ]; then
            echo "FAIL generate $lang: affix exited with $rc: $(grep 'error' "$tmp.err" | head -n 1)"
            fail=$((fail + 1))
        elif [ "$got" = "$want" ]; then
            echo "  ok    generate $lang: $got"
            pass=$((pass + 1))
        else
            # the first step that differs, and HF's top-2 gap there
            # shellcheck disable=SC2086 # the ids, one word each
            set -- $got
            k=1
            for w in $want; do
                [ "${1:-}" = "$w" ] || break
                shift
                k=$((k + 1))
            done
            gap=$(printf '%s\n' "$gaps" | cut -d ' ' -f "$k")
            echo "FAIL generate $lang: got '$got' want '$want' (first difference at generated token $k; HF's top-2 logit gap there: ${gap:-?})"
            fail=$((fail + 1))
        fi
    done <"$tmp"
    rm -f "$tmp" "$tmp.err"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
