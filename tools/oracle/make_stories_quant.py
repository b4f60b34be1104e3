#!/usr/bin/env python3
"""make_stories_quant.py — tests/data/stories260K/stories260K-quant.gguf: stories260K.gguf with its
matrices quantized by gguf-py (not by affix), for the tests that run the whole program on a model
whose frozen weights stay in their block formats (tests/test_cli.sh: --weights file against f32).

Every key of the original is copied (tokenizer included); matrices: token_embd / output / ffn_gate /
ffn_up Q8_0, attn_q / attn_k Q5_0, attn_v / attn_output Q4_0; ffn_down (172 columns, not a whole
number of 32-element blocks) and the norms stay F32, so one kind of each layer is converted on load.
usage: python tools/oracle/make_stories_quant.py   (the oracle's pinned stack: requirements.txt)
"""
import os
import sys

import gguf
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "tests/data/stories260K/stories260K.gguf")
DST = os.path.join(ROOT, "tests/data/stories260K/stories260K-quant.gguf")
Q = gguf.GGMLQuantizationType
TYPES = {"token_embd": Q.Q8_0, "output": Q.Q8_0, "ffn_gate": Q.Q8_0, "ffn_up": Q.Q8_0,
         "attn_q": Q.Q5_0, "attn_k": Q.Q5_0, "attn_v": Q.Q4_0, "attn_output": Q.Q4_0}


def main():
    r = gguf.GGUFReader(SRC)
    w = gguf.GGUFWriter(DST, "llama")
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vt = f.types[0]
        w.add_key_value(key, f.contents(), vt, f.types[1] if vt == gguf.GGUFValueType.ARRAY else None)
    for t in r.tensors:
        a = np.asarray(t.data, dtype=np.float32).reshape(t.data.shape)
        kind = t.name.split(".")[-2] if t.name.startswith("blk.") else t.name.split(".")[0]
        qt = TYPES.get(kind)
        if qt is None or a.ndim != 2:
            w.add_tensor(t.name, a)
            continue
        q = gguf.quants.quantize(a, qt)
        w.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {DST} ({os.path.getsize(DST)} bytes)")


if __name__ == "__main__":
    sys.exit(main())
