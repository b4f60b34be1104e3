#!/bin/sh
# test_gemma3.sh — affix on the real Gemma 3 270M GGUF against Hugging Face (make test-gemma3).
#
#   sh tests/test_gemma3.sh [GGUF]      GGUF: default the path tools/fetch_gemma3.sh prints
#   env: AFFIX (default build/affix), TOK_TEST (default build/test_gemma3_tok), LOGITS_TEST (default
#        test_gemma3_logits next to TOK_TEST), PYTHON (part 4; default /work/venv/bin/python if it
#        exists, else python3), GEMMA3_ONLY=tokenizer (skip parts 2-4, which need the model)
#
# (1) tokenizer: tests/test_gemma3_tok.c on tests/data/gemma3/tokenizer.json (every text encoded with
#     BOS must give HF's ids exactly; decodes too) and the prompts of greedy.json (HF's prompt ids).
# (2) generation: for each prompt of tests/data/gemma3/greedy.json, `affix generate -p PROMPT -n 16
#     --ids` (greedy, BOS + prompt) must print HF's 16 ids (float32 transformers, eager). On a
#     difference the message gives HF's best-minus-second logit gap at that step: a gap of ~1e-3 or
#     less is a near-tie a float32 reimplementation may flip; a large one is a bug.
# (3) PEFT -> affix: for each adapter written by the real peft (tests/data/gemma3/peft_{prefix,lora,
#     prompt}/, tools/oracle/make_gemma3_peft.py) and each prompt of its peft_*_logits.json, `affix
#     generate --adapter DIR -p PROMPT -n 1 --logits FILE`, then tests/test_gemma3_logits.c compares the
#     dump with PEFT's logits (top-20 ids, top-20 values, 200 spread ids, max |logit|; values within
#     1.5e-5 of max |logit|).
# (4) affix -> PEFT: train a prefix with affix for 5 steps (seq-len 64, lr 3e-3, demo NLI data), then
#     tools/oracle/make_gemma3_peft.py --check-affix loads affix's adapter directory into the real
#     peft on transformers' Gemma 3 and compares its logits with affix's dumps for 3 prompts (same
#     tolerance). Needs Python with torch, transformers and peft (about a minute); skipped with a
#     note when $PYTHON cannot import them.
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

# add the "N passed, M failed" last line of $1 (the output of program $2, exit code $3) to the sums
tally() {
    t_last=$(printf '%s\n' "$1" | tail -n 1)
    t_p=$(printf '%s\n' "$t_last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
    t_f=$(printf '%s\n' "$t_last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
    if [ -z "$t_p" ]; then
        echo "!!! $2 did not end with 'N passed, M failed' (exit code $3)"
        t_p=0 t_f=1
    elif [ "$3" -ne 0 ] && [ "$t_f" -eq 0 ]; then
        echo "!!! $2 exited with code $3"
        t_f=1
    fi
    pass=$((pass + t_p))
    fail=$((fail + t_f))
}

# ---- (1) tokenizer ------------------------------------------------------------------------------
echo "=== tokenizer: $TOK_TEST $gguf"
out=$("$TOK_TEST" "$gguf" "$DATA/tokenizer.json" "$DATA/greedy.json" 2>&1)
rc=$?
printf '%s\n' "$out"
tally "$out" "$TOK_TEST" "$rc"

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


# ---- (3) PEFT adapters -> affix generate --logits -----------------------------------------------
LOGITS_TEST=${LOGITS_TEST:-$(dirname "$TOK_TEST")/test_gemma3_logits}
PROMPTS3="The capital of France is|Die Hauptstadt von Deutschland ist|中国的首都是"
if [ "${GEMMA3_ONLY:-}" != tokenizer ]; then
    tmpd=$(mktemp -d "${TMPDIR:-/tmp}/affix-gemma3-peft.XXXXXX") || exit 1
    tab=$(printf '\t')
    for case in base prefix lora prompt; do
        # base: the plain model's logits at the last prompt position (base_logits.json)
        if [ "$case" = base ]; then json=$DATA/base_logits.json; set --; else json=$DATA/peft_${case}_logits.json; set -- --adapter "$DATA/peft_$case"; fi
        echo "=== $case: $AFFIX generate -m $gguf $* -p PROMPT -n 1 --logits FILE (vs $json)"
        list=$("$LOGITS_TEST" --list "$json") || { echo "FAIL cannot list the prompts of $json"; fail=$((fail + 1)); continue; }
        printf '%s\n' "$list" >"$tmpd/list"
        while IFS="$tab" read -r lang prompt; do
            [ -n "$lang" ] || continue
            dump=$tmpd/$case.$lang.f32
            if ! "$AFFIX" generate -m "$gguf" "$@" -p "$prompt" -n 1 --ids --logits "$dump" \
                >/dev/null 2>"$tmpd/err"; then
                echo "FAIL peft_$case $lang: affix generate failed: $(grep 'error' "$tmpd/err" | head -n 1)"
                fail=$((fail + 1))
                continue
            fi
            out=$("$LOGITS_TEST" "$json" "$lang" "$dump" 2>&1)
            rc=$?
            printf '%s\n' "$out" | sed '$d'
            tally "$out" "$LOGITS_TEST" "$rc"
        done <"$tmpd/list"
    done

    # ---- (4) an adapter trained by affix -> the real peft ---------------------------------------
    if [ -n "${PYTHON:-}" ]; then
        py=$PYTHON
    elif [ -x /work/venv/bin/python ]; then
        py=/work/venv/bin/python
    else
        py=python3
    fi
    echo "=== affix -> PEFT: $AFFIX train --method prefix (5 steps), then tools/oracle/make_gemma3_peft.py --check-affix"
    if ! "$py" -c "import numpy, torch, transformers, peft" >/dev/null 2>&1; then
        echo "  note: part (4) skipped: $py cannot import numpy, torch, transformers and peft"
    elif ! "$AFFIX" train -m "$gguf" --method prefix --num-virtual-tokens 10 --task nli \
        --data tests/data/demo/xnli.dev.en.tsv --limit 5 --max-steps 5 --seq-len 64 --lr 3e-3 --seed 42 --quiet \
        --out "$tmpd/train" >"$tmpd/train.log" 2>&1; then
        echo "FAIL affix train: $(grep 'error' "$tmpd/train.log" | head -n 1)"
        fail=$((fail + 1))
    else
        set --
        k=0
        ok=1
        old_ifs=$IFS
        IFS='|'
        for prompt in $PROMPTS3; do
            IFS=$old_ifs
            k=$((k + 1))
            if ! "$AFFIX" generate -m "$gguf" --adapter "$tmpd/train/adapter" -p "$prompt" -n 1 --ids \
                --logits "$tmpd/trained.$k.f32" >/dev/null 2>"$tmpd/err"; then
                echo "FAIL trained prefix: affix generate failed: $(grep 'error' "$tmpd/err" | head -n 1)"
                ok=0
            fi
            set -- "$@" --logits "$tmpd/trained.$k.f32" --prompt "$prompt"
        done
        IFS=$old_ifs
        if [ "$ok" -eq 0 ]; then
            fail=$((fail + 1))
        else
            out=$("$py" tools/oracle/make_gemma3_peft.py --gguf "$gguf" --check-affix "$tmpd/train/adapter" "$@" 2>&1)
            rc=$?
            printf '%s\n' "$out" | sed '$d'
            tally "$(printf '%s\n' "$out" | tail -n 1 | sed 's/^check-affix: //')" "make_gemma3_peft.py --check-affix" "$rc"
        fi
    fi
    rm -rf "$tmpd"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
