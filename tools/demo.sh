#!/bin/sh
# demo.sh — what `make demo` runs: the paper's experiment in miniature on the bundled tiny model.
#   1. prefix tuning of stories260K on 400 English NLI pairs (XNLI English dev, MNLI-style)
#   2. zero-shot XNLI in six languages (40 test pairs each), scoring the three label words by
#      log-likelihood; a per-language table, results.json and results.svg
# stories260K is a 260K-parameter model trained on English children's stories: it knows no
# German, Chinese, Korean, Swahili or Urdu and no NLI, so the accuracies hover around chance
# (33%). The demo shows the pipeline working end to end, not the method's quality.
set -eu
cd "$(dirname "$0")/.."
AFFIX=${AFFIX:-build/affix}
MODEL=tests/data/stories260K/stories260K.gguf
OUT=${OUT:-build/demo}
rm -rf "$OUT/train" "$OUT/eval"
mkdir -p "$OUT"

cat <<'NOTE'
================================================================================================
affix demo: prefix tuning on English NLI, zero-shot XNLI in six languages
  model: stories260K (260K parameters, English children's stories only). It is TINY and
  ENGLISH-ONLY: the numbers below show the pipeline, not the quality of the method.
  The same commands run on Llama 3.2 1B: see README.md, "Running on a real model".
================================================================================================
NOTE

echo "--- train: prefix tuning, 8 virtual tokens on every layer, 40 steps of 8 examples"
"$AFFIX" train -m "$MODEL" --method prefix --num-virtual-tokens 8 \
    --task nli --data tests/data/demo/xnli.dev.en.tsv --lang en \
    --seq-len 160 --batch 8 --lr 3e-2 --warmup 4 --max-steps 40 --seed 42 --out "$OUT/train"

first=$(sed -n 2p "$OUT/train/train_log.csv" | cut -d, -f2)
last=$(tail -n 5 "$OUT/train/train_log.csv" | cut -d, -f2 | awk '{s += $1} END {printf "%.4f", s / NR}')
echo "training loss: $first at step 1 -> $last (mean of the last 5 steps)"

echo "--- evaluate zero-shot: XNLI de en ko sw ur zh, 40 pairs each, log-likelihood of the labels"
"$AFFIX" eval -m "$MODEL" --adapter "$OUT/train/adapter" --task xnli --scoring loglik --limit 40 \
    --data tests/data/demo/xnli.test.de.txt tests/data/demo/xnli.test.en.tsv tests/data/demo/xnli.test.ko.tsv \
           tests/data/demo/xnli.test.sw.tsv tests/data/demo/xnli.test.ur.tsv tests/data/demo/xnli.test.zh.tsv \
    --out "$OUT/eval" --quiet

echo
echo "outputs: $OUT/train/train_log.csv  $OUT/train/adapter/ (PEFT format)  $OUT/eval/results.json"
echo "         $OUT/eval/predictions.jsonl  $OUT/eval/results.svg (open it in a browser)"
awk -v a="$first" -v b="$last" 'BEGIN { if (b >= a) { print "demo: the training loss did not fall"; exit 1 } }'
