#!/bin/sh
# mutants.sh — plants known bugs into a scratch copy of the tree, one at a time, and checks that
# `make test` FAILS for each. A mutant the suite does not catch is reported and makes this script
# exit 1. Not part of `make test` (it rebuilds once per mutant); run it by hand or in CI:
#     sh tools/mutants.sh            all mutants
#     sh tools/mutants.sh rope_bwd   the mutants whose name contains "rope_bwd" (several names: any)
# Each mutant: a name, a file, a sed expression that must change that file.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SCRATCH=${TMPDIR:-/tmp}/affix-mutants.$$
filter="$*"

MUTANTS='
rmsnorm_bwd_mean_term|ref/core/ops.c|s/dx\[c\] += r \* g\[c\] \* w\[c\] - k \* x\[c\] \* dot;/dx[c] += r * g[c] * w[c] + 0 * k * dot;/
rope_bwd_one_side|ref/core/ops.c|s/dx\[j\] += g1 \* c\[j\] + g2 \* s\[j\];/dx[j] += g1 * c[j];/
rope_bwd_sign|ref/core/ops.c|s/dx\[j + H2\] += g2 \* c\[j\] - g1 \* s\[j\];/dx[j + H2] += g2 * c[j] + g1 * s[j];/
attention_bwd_rowsum|ref/core/ops.c|s/real z = p\[s\] \* (dp\[s\] - psum);/real z = p[s] * dp[s];/
attention_lse_log_dropped|ref/core/ops.c|s/\*lt = l > 0 ? m + (real)log((double)l) : 0;/*lt = l > 0 ? m : 0;/
swiglu_bwd_sigmoid_term|ref/core/ops.c|s/sg \* (1 + a \* (1 - sg))/sg/
crossentropy_bwd_onehot|ref/core/ops.c|s/(p - (i == y ? 1.0 : 0.0))/(p - (i == y ? 0.5 : 0.0))/
tied_embedding_one_use|ref/core/llama.c|s/embedding_backward(gslot(g, LT_EMBED, 0), dxb/embedding_backward(g \&\& g->cfg.tied ? NULL : gslot(g, LT_EMBED, 0), dxb/
llama3_blend_band|ref/core/ops.c|s/f = (1.0 - s) \* f \/ factor + s \* f;/f = f \/ factor;/
adamw_bias_correction|ref/core/optim.c|s/double denom = sqrt(vi) \/ bc2_sqrt + c->eps;/double denom = sqrt(vi) + c->eps;/
prompt_bwd_sign|ref/adapters/prompt.c|s/dE\[i\] += dx\[/dE[i] -= dx[/
prefix_kv_bwd_sign|ref/adapters/prefix.c|s/+= dvcat\[src\];/-= dvcat[src];/
prefix_mlp_tanh_bwd|ref/adapters/prefix.c|s/\*= 1 - px->hidden\[j\] \* px->hidden\[j\];/*= 1 + px->hidden[j] * px->hidden[j];/
llama_adapter_gate_bwd_sign|ref/adapters/llama_adapter.c|s/dgate\[0\] += (real)dg;/dgate[0] -= (real)dg;/
llama_adapter_official_tanh_bwd|ref/adapters/llama_adapter.c|s/dgate\[h\] += (real)(dg \* (1 - gh \* gh));/dgate[h] += (real)dg;/
llama_adapter_key_bwd_sign|ref/adapters/llama_adapter.c|s/dkp\[e\] += ds \* q\[e\];/dkp[e] -= ds * q[e];/
lora_B_bwd_sign|ref/adapters/lora.c|s/dB\[(size_t)o \* R + r\] += s \* acc;/dB[(size_t)o * R + r] -= s * acc;/
lora_A_bwd_sign|ref/adapters/lora.c|s/dA\[(size_t)r \* IC + i\] += acc;/dA[(size_t)r * IC + i] -= acc;/
lora_dx_bwd_dropped|ref/adapters/lora.c|s/if (dx)$/if (0 \&\& dx)/
gemma_embed_scale|ref/core/llama.c|s/? (real)sqrt((double)c->C) : (real)1;/? (real)1 : (real)1;/
gemma_embed_scale_bwd|ref/core/llama.c|s/dxb\[i\] \*= es;/(void)dxb;/
gemma_norm_one_plus_w|ref/core/block.c|s/i++) dst\[i\] = (real)1 + src\[i\];/i++) dst[i] = src[i];/
gemma_qnorm_weight_grad|ref/core/llama.c|s/K->rmsnorm_backward(da->dq, gslot(g, LT_QNORM, l),/K->rmsnorm_backward(da->dq, NULL,/
gemma_knorm_bwd_rstd|ref/core/llama.c|s/block_norm(\&run, LT_KNORM, l), ba.kn_rstd,/block_norm(\&run, LT_KNORM, l), ba.qn_rstd,/
gemma_window_edge|ref/core/ops.h|s/t + off - s >= sp->window/t + off - s > sp->window/
gemma_sandwich_attn_norm|ref/core/block.c|s/        branch = a->on;/        branch = a->o;/
gemma_geglu_bwd_tanh_term|ref/core/ops.c|s/0.5 \* (1.0 + th) + 0.5 \* a \* (1.0 - th \* th)/0.5 * (1.0 + th) + 0.0 * a * (1.0 - th * th)/
gemma_adapter_knorm_bwd|ref/adapters/llama_adapter.c|s/        dK = la->dKraw;/        dK = la->dKa;/
selected_rows_dln_scatter|ref/core/llama.c|s/memcpy(da->dln + (size_t)a->rows\[r\] \* C, a->dlnf_rows + (size_t)r \* C, C \* sizeof(real));/memcpy(da->dln + (size_t)a->rows[r] * C, a->dlnf_rows, C * sizeof(real));/
head_chunk_dlogits_zeroed|ref/core/llama.c|s/memset(a->dlogits_chunk, 0, (size_t)(len + 1) \* V \* sizeof(real));/(void)0;/
decode_last_only_row|ref/core/decode.c|s/size_t r = (size_t)b \* Tx + Tx - 1;/size_t r = (size_t)b * Tx;/
decode_rewind_keeps_rows|ref/core/decode.c|s/    c->used = used;/    (void)used;/
eval_lm_next_token|tools/cmd_eval.c|s/ids\[off + r + 1\]);/ids[off + r]);/
probe_pools_bos|tools/cmd_probe.c|s/int from = Pv + (p->bos_skipped ? 0 : 1);/int from = Pv;/
json_first_wins|ref/io/json_read.c|s/if (!strcmp(m\[i\].key, m\[i + 1\].key)) {/if (0 \&\& !strcmp(m[i].key, m[i + 1].key)) {/
json_nul_escape_ignored|ref/io/json_read.c|s/i + 5 < len .. !memcmp(buf + i + 2/i + 5 < len \&\& 0 \&\& !memcmp(buf + i + 2/
model_nan_accepted|ref/io/model.c|s/    if (!rc) rc = check_finite(m, path, e);/    (void)check_finite;/
quant_q5_0_offset|ref/core/quant.c|s/(q5_code(qh, b + 6, i) - 16)/(q5_code(qh, b + 6, i) - 15)/
quant_q4_k_nibble_order|ref/core/quant.c|s/int sh = 4 \* (j % 2);/int sh = 4 * (j \/ 2 % 2);/
lean_lora_input_shared|ref/adapters/lora.c|s/if (lo->idx\[l \* LIN_COUNT + site\] >= 0) return 1;/if (lo->idx[l * LIN_COUNT + site] >= 0) return 0;/
lean_base_input_shared|ref/core/llama.c|s/: LLAMA_SH_Q | LLAMA_SH_K; \/\/ (Gemma/: LLAMA_SH_Q | LLAMA_SH_K | LLAMA_SH_LN2 | LLAMA_SH_ACT; \/\/ (Gemma/
grad_accum_in_place|ref/adapters/train.c|s/        if (i > 0) {/        if (0 \&\& i > 0) {/
dp_local_targets|ref/adapters/train.c|s/    if (comm \&\& comm->sum_count(comm->ctx, \&targets, e)) return -1;/    (void)comm;/
dist_chain_drops_own|tools/dist.c|s/x\[j\] = in\[j\] + x\[j\];/x[j] = in[j];/
eval_merge_value_index|tools/cmd_eval.c|s/vr\[r\] + (i \/ (size_t)K)/vr[r] + (i % (size_t)K)/
adapter_resync_skipped|tools/cmd_train.c|s/if (in_place \&\& (!have || !complete || astep != st.step)) {/if (0 \&\& in_place \&\& (!have || !complete || astep != st.step)) {/
adapter_midsave_accepted|tools/cli_adapters.c|s/if (st \&\& !complete)/if (0 \&\& st \&\& !complete)/
simd_gemm_nt_transpose_shift|simd/kernels.c|s/VTRANSPOSE(dst + (size_t)pb \* NR + jb, NR, s + pb, B.cs)/VTRANSPOSE(dst + (size_t)pb * NR + jb, NR, s + pb + 1, B.cs)/
simd_gemm_nt_pack_tail|simd/kernels.c|s/for (int p = pv; p < kc; p++) dst\[(size_t)p \* NR + jb + j\]/for (int p = pv; p + 1 < kc; p++) dst[(size_t)p * NR + jb + j]/
simd_crossentropy_fwd_target|simd/kernels.c|s/term\[r\] = (double)m + log(se) - (double)z\[y\];/term[r] = (double)m + log(se);/
simd_qgemm_nt_one_row|simd/kernels.c|s/qrow(B.q, j0 + j, p0, kc, rows/qrow(B.q, j0, p0, kc, rows/
simd_qgemm_nn_slice_shift|simd/kernels.c|s/memcpy(d, row + q \* NR, (size_t)nr/memcpy(d, row + q * NR + 1, (size_t)nr/
simd_q5_0_high_bit|simd/kernels.c|s/BIT4\[b\[4 + j \/ 8\]\]/BIT4[b[2 + j \/ 8]]/
simd_q6_k_high_bits|simd/kernels.c|s/>> (2 \* q) \& 0x0303030303030303ULL/>> (2 * q + 1) \& 0x0303030303030303ULL/
quant_row_partial_offset|ref/core/quant.c|s/memcpy(dst, tmp + (c0 - lo),/memcpy(dst, tmp,/
ref_qmatmul_bwd_chunk|ref/core/ops.c|s/for (int i = 0; i < m; i++) dx\[c0 + i\] += go \* wr\[i\];/for (int i = 0; i < m; i++) dx[i] += go * wr[i];/
'

# a copy of the tree (the files git knows, or everything but build/ outside a git checkout)
copy_tree() {
    rm -rf "$SCRATCH" && mkdir -p "$SCRATCH"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (git ls-files -co --exclude-standard | tar cf - -T -) | (cd "$SCRATCH" && tar xf -)
    else
        tar cf - --exclude=./build . | (cd "$SCRATCH" && tar xf -)
    fi
}

# the unmutated copy must pass, or "caught" would mean nothing
copy_tree
if ! (cd "$SCRATCH" && make -j2 test >/dev/null 2>&1); then
    echo "the unmutated tree does not pass make test: mutants cannot be judged"
    rm -rf "$SCRATCH"
    exit 1
fi
echo "baseline: the unmutated copy passes make test"

rm -f build/.mutants build/.mutants-ran
mkdir -p build
# the mutants that must run: a loop cut short (something ate its input) is a failure, not a pass
expected=0
for n in $(echo "$MUTANTS" | cut -d'|' -f1); do
    hit=0
    for f in ${filter:-""}; do case "$n" in *"$f"*) hit=1 ;; esac; done
    [ -z "$filter" ] && hit=1
    expected=$((expected + hit))
done
# One scratch copy, built once by the baseline run; each mutant edits one file in place, `make test`
# rebuilds what depends on it (make compares times), and the file is put back (with a new time, so
# the next run rebuilds it unmutated).
echo "$MUTANTS" | while IFS='|' read -r name file expr; do
    [ -n "$name" ] || continue
    hit=0 # a mutant runs when its name contains one of the arguments (all when none was given)
    for f in ${filter:-""}; do case "$name" in *"$f"*) hit=1 ;; esac; done
    [ -z "$filter" ] && hit=1
    [ $hit -eq 1 ] || continue
    echo "$name" >> "$ROOT/build/.mutants-ran"
    cp -p "$SCRATCH/$file" "$SCRATCH/$file.orig"
    sed -i "$expr" "$SCRATCH/$file"
    if cmp -s "$SCRATCH/$file" "$SCRATCH/$file.orig"; then
        echo "?? $name: the sed expression did not change $file (mutant is stale)"
        echo missed >> "$ROOT/build/.mutants"
        mv "$SCRATCH/$file.orig" "$SCRATCH/$file"
        continue
    fi
    # the suite stops at its first failing program (one failure is all a mutant needs)
    # (stdin from /dev/null: a program of the suite that reads stdin, mpirun does, would eat this list)
    out=$(cd "$SCRATCH" && AFFIX_FAIL_FAST=1 make -j2 test 2>&1 </dev/null)
    rc=$?
    cat "$SCRATCH/$file.orig" > "$SCRATCH/$file" && rm "$SCRATCH/$file.orig" # back, with a new time
    if [ $rc -ne 0 ]; then
        summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
        if [ -z "$summary" ]; then
            echo "BUILD?  $name: make test failed without a test summary (the mutant broke the build)"
            echo missed >> "$ROOT/build/.mutants"
        else
            echo "caught  $name: $summary"
        fi
    else
        echo "MISSED  $name: make test passed with the bug planted"
        echo missed >> "$ROOT/build/.mutants"
    fi
done
rm -rf "$SCRATCH"
ran=$(cat build/.mutants-ran 2>/dev/null | wc -l)
rm -f build/.mutants-ran
if [ "$ran" -ne "$expected" ]; then echo "only $ran of the $expected mutants ran (the loop was cut short)"; exit 1; fi
if [ -f build/.mutants ]; then rm -f build/.mutants; echo "some mutants were not caught"; exit 1; fi
echo "every mutant was caught ($ran)"
