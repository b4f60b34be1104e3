"""Write the tiny real-format models of tests/data/tiny-hf/ and tests/data/tiny-gguf/ and their
expected logits (tests/test_models.c reads them; it never needs Python).

Run from the repository root:   /work/venv/bin/python tools/oracle/make_hf_dirs.py
(needs torch, transformers, safetensors, numpy and gguf — llama.cpp's gguf-py, `pip install gguf`).

What it writes, each AS THE REAL TOOL WRITES IT:
  tests/data/tiny-hf/f32/       transformers LlamaForCausalLM.save_pretrained (float32)
  tests/data/tiny-hf/bf16/      the same model after .to(torch.bfloat16)
  tests/data/tiny-hf/sharded/   save_pretrained(max_shard_size=...) -> 2+ shards + index.json
  tests/data/tiny-gguf/tiny-f16.gguf, tiny-q8_0.gguf
                                gguf-py's GGUFWriter with llama.cpp's key and tensor names; matrices
                                F16 / Q8_0 (gguf-py's quantizer), norms F32; q/k rows permuted into
                                the interleaved RoPE order exactly as llama.cpp's convert_hf_to_gguf
                                does (see permute_like_llama_cpp)
  tests/data/tiny-hf/expected.safetensors
                                input_ids [B,T] and float64 logits of tools/oracle/llama_oracle.py on
                                the weights each file really holds: logits.f32 (f32 and sharded dirs),
                                logits.bf16 (the bf16-rounded weights), logits.gguf_f16 and
                                logits.gguf_q8_0 (the f16-rounded / Q8_0-dequantized matrices).
The model: a fresh config (not a golden one) with an untied lm_head, GQA (4 heads / 2 KV), eos a
list; weights drawn by llama_oracle.init_params from a fixed seed. Deterministic: a rerun gives the
same bytes (save_pretrained writes no timestamps; safetensors metadata is {"format": "pt"}).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_oracle as lo  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HF_OUT = os.path.join(REPO, "tests", "data", "tiny-hf")
GGUF_OUT = os.path.join(REPO, "tests", "data", "tiny-gguf")
SEED = 4242
BOS, EOS = 1, [2, 3]

# Every matrix has an input size that is a multiple of 32, so that Q8_0 can hold all of them.
CFG = lo.LlamaConfig(vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-5,
                     rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=False,
                     max_position_embeddings=128)
INPUT_IDS = torch.tensor([[1, 5, 17, 33, 2, 40, 9, 11], [1, 47, 0, 23, 23, 8, 30, 4]], dtype=torch.int64)


def hf_model(params: dict):
    """transformers LlamaForCausalLM holding `params` (float32)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    hc = LlamaConfig(vocab_size=CFG.vocab_size, hidden_size=CFG.hidden_size,
                     intermediate_size=CFG.intermediate_size, num_hidden_layers=CFG.num_hidden_layers,
                     num_attention_heads=CFG.num_attention_heads,
                     num_key_value_heads=CFG.num_key_value_heads, head_dim=CFG.head_dim,
                     rms_norm_eps=CFG.rms_norm_eps, rope_theta=CFG.rope_theta,
                     tie_word_embeddings=CFG.tie_word_embeddings,
                     max_position_embeddings=CFG.max_position_embeddings,
                     bos_token_id=BOS, eos_token_id=EOS, pad_token_id=None)
    torch.manual_seed(0)  # the random init is overwritten below; seeded anyway
    model = LlamaForCausalLM(hc).eval()
    sd = model.state_dict()
    with torch.no_grad():
        for name, w in params.items():
            sd[name].copy_(w.to(torch.float32))
    return model


def oracle_logits(params: dict) -> torch.Tensor:
    return lo.forward(CFG, {k: v.to(torch.float64) for k, v in params.items()}, INPUT_IDS)


def permute_like_llama_cpp(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotate-half rows -> interleaved rows, per head (llama.cpp convert_hf_to_gguf's permute):
    view the rows of each head as (2, HS/2) and transpose to (HS/2, 2), so that
    GGUF row h*HS + 2i + a = HF row h*HS + a*HS/2 + i."""
    out_dim = w.shape[0]
    return w.reshape(n_head, 2, out_dim // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}
GGUF_LAYER = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
              "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
              "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down"}


def gguf_name(hf: str) -> str:
    if hf in GGUF_NAMES:
        return GGUF_NAMES[hf]
    _, _, l, rest = hf.split(".", 3)
    return f"blk.{l}.{GGUF_LAYER[rest[:-len('.weight')]]}.weight"


def write_gguf(path: str, params: dict, qtype) -> dict:
    """Write a llama GGUF of params with matrices in qtype; return the weights it really holds
    (dequantized, in HF layout) for the oracle."""
    import gguf
    held = {}
    wr = gguf.GGUFWriter(path, "llama")
    wr.add_name("affix tiny test model")
    wr.add_context_length(CFG.max_position_embeddings)
    wr.add_embedding_length(CFG.hidden_size)
    wr.add_block_count(CFG.num_hidden_layers)
    wr.add_feed_forward_length(CFG.intermediate_size)
    wr.add_rope_dimension_count(CFG.head_dim)
    wr.add_head_count(CFG.num_attention_heads)
    wr.add_head_count_kv(CFG.num_key_value_heads)
    wr.add_key_length(CFG.head_dim)
    wr.add_value_length(CFG.head_dim)
    wr.add_layer_norm_rms_eps(CFG.rms_norm_eps)
    wr.add_rope_freq_base(CFG.rope_theta)
    wr.add_vocab_size(CFG.vocab_size)
    wr.add_bos_token_id(BOS)
    wr.add_eos_token_id(EOS[0])
    wr.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if qtype == gguf.GGMLQuantizationType.Q8_0
                     else gguf.LlamaFileType.MOSTLY_F16)
    for name, w in params.items():
        a = w.to(torch.float32).numpy()
        if a.ndim == 1:
            wr.add_tensor(gguf_name(name), a)                       # norms stay F32
            held[name] = torch.from_numpy(a.copy())
            continue
        if qtype == gguf.GGMLQuantizationType.F16:
            q = a.astype(np.float16)
            held[name] = torch.from_numpy(q.astype(np.float32))
        else:
            q = gguf.quants.quantize(a, qtype)
            held[name] = torch.from_numpy(gguf.quants.dequantize(q, qtype).astype(np.float32))
        if ".q_proj." in name or ".k_proj." in name:
            nh = CFG.num_attention_heads if ".q_proj." in name else CFG.num_key_value_heads
            # rows are whole quantization blocks' owners: permuting quantized rows == quantizing
            # permuted rows (checked)
            pq = permute_like_llama_cpp(q, nh)
            if qtype != gguf.GGMLQuantizationType.F16:
                assert np.array_equal(pq, gguf.quants.quantize(permute_like_llama_cpp(a, nh), qtype))
            q = pq
        if qtype == gguf.GGMLQuantizationType.F16:
            wr.add_tensor(gguf_name(name), q)
        else:
            wr.add_tensor(gguf_name(name), q, raw_shape=q.shape, raw_dtype=qtype)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return held


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    torch.use_deterministic_algorithms(True)
    import gguf

    gen = torch.Generator().manual_seed(SEED)
    params = lo.init_params(CFG, gen)                   # float64 holding float32 values

    model = hf_model(params)
    with torch.no_grad():
        hf32 = model(INPUT_IDS).logits.to(torch.float64)
    ref32 = oracle_logits(params)
    err = (hf32 - ref32).abs().max().item()
    assert err < 1e-4, f"oracle and transformers disagree by {err}"

    for sub in ("f32", "bf16", "sharded"):
        shutil.rmtree(os.path.join(HF_OUT, sub), ignore_errors=True)
    model.save_pretrained(os.path.join(HF_OUT, "f32"))
    model.save_pretrained(os.path.join(HF_OUT, "sharded"), max_shard_size="40KB")
    model_bf16 = hf_model(params).to(torch.bfloat16)
    model_bf16.save_pretrained(os.path.join(HF_OUT, "bf16"))
    shards = [f for f in os.listdir(os.path.join(HF_OUT, "sharded")) if f.endswith(".safetensors")]
    assert len(shards) >= 2, shards

    # the weights the bf16 directory really holds
    p_bf16 = {k: v.to(torch.bfloat16).to(torch.float64) for k, v in params.items()}
    logits = {"logits.f32": ref32, "logits.bf16": oracle_logits(p_bf16)}

    os.makedirs(GGUF_OUT, exist_ok=True)
    for tag, qt in (("f16", gguf.GGMLQuantizationType.F16), ("q8_0", gguf.GGMLQuantizationType.Q8_0)):
        held = write_gguf(os.path.join(GGUF_OUT, f"tiny-{tag}.gguf"), params, qt)
        logits[f"logits.gguf_{tag}"] = oracle_logits(held)

    tensors = {"input_ids": INPUT_IDS.contiguous()}
    tensors.update({k: v.contiguous() for k, v in logits.items()})
    blob = safetensors_bytes(tensors)                      # no metadata: deterministic bytes
    with open(os.path.join(HF_OUT, "expected.safetensors"), "wb") as f:
        f.write(blob)

    for root in (HF_OUT, GGUF_OUT):
        for dp, _, files in sorted(os.walk(root)):
            for fn in sorted(files):
                p = os.path.join(dp, fn)
                if fn.endswith(".md"):
                    continue
                print(f"{os.path.relpath(p, REPO):60s} {os.path.getsize(p):7d}  {sha256_of(p)}")
    for k, v in logits.items():
        print(f"{k:18s} max|logit| {v.abs().max().item():.4f}  vs f32 {(v - ref32).abs().max().item():.3e}")
    print(f"transformers (float32) vs oracle: {err:.3e}")


if __name__ == "__main__":
    main()
