#!/bin/sh
# fuzz_peft_seeds.sh DIR — the seeds of tests/fuzz_peft.c: each adapter directory of tests/data/peft
# as one file, adapter_config.json + four NUL bytes + adapter_model.safetensors, written into DIR
# (a corpus directory under build/, never the tree).
out=${1:?usage: sh tests/fuzz_peft_seeds.sh DIR}
mkdir -p "$out" || exit 1
for d in tests/data/peft/from_peft/* tests/data/peft/from_affix/*; do
    [ -f "$d/adapter_config.json" ] && [ -f "$d/adapter_model.safetensors" ] || continue
    { cat "$d/adapter_config.json"; printf '\0\0\0\0'; cat "$d/adapter_model.safetensors"; } > "$out/seed_${d##*/}_$(basename "$(dirname "$d")")"
done
