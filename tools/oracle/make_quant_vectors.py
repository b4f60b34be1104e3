"""make_quant_vectors.py — test vectors for ref/io/gguf.c's dequantizers (tests/test_quant.c).

What this is: for each of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K, a few blocks of
seeded random bytes (the f16 scale fields overwritten with finite halves of moderate magnitude; the
plain types' non-finite values replaced by finite ones) and what the gguf package's
gguf.quants.dequantize makes of them:
    tests/data/quant/<TYPE>.bin   the raw block bytes, as they would lie in a GGUF data section
    tests/data/quant/<TYPE>.f32   the expected elements, little-endian float32
It also prints, per type, how many elements the float32 evaluation gives differently from an exact
(float64) one: where that is non-zero, a decoder that evaluates in double fails the f64 test.
What this is not: part of make test (the files are committed). Run from the repository root:
    /work/venv/bin/python tools/oracle/make_quant_vectors.py
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

OUT = os.path.join("tests", "data", "quant")
SEED = 20250101

# type -> (number of blocks, byte offsets of its f16 scale fields within a block)
SPECS = {
    "F32": (64, None),
    "F16": (64, None),
    "BF16": (64, None),
    "Q8_0": (6, [0]),
    "Q4_0": (6, [0]),
    "Q4_1": (6, [0, 2]),
    "Q5_0": (6, [0]),
    "Q5_1": (6, [0, 2]),
    "Q4_K": (4, [0, 2]),
    "Q5_K": (4, [0, 2]),
    "Q6_K": (4, [208]),
}


def moderate_halves(rng, n):
    """n finite f16 values, sign random, magnitude 2^-20 .. 2^3 (subnormal halves included)."""
    mag = rng.uniform(1.0, 2.0, n) * np.exp2(rng.integers(-20, 3, n).astype(np.float64))
    sign = np.where(rng.integers(0, 2, n) == 1, -1.0, 1.0)
    h = (sign * mag).astype(np.float16)
    assert np.all(np.isfinite(h))
    return h


def plain_bytes(rng, name, n):
    """n random values of a plain type as bytes, with every non-finite one made finite."""
    if name == "F32":
        u = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        bad = (u & 0x7F800000) == 0x7F800000
        u[bad] &= np.uint32(0xBFFFFFFF)  # clear the top exponent bit: a finite value
        return u.view(np.uint8)
    u = rng.integers(0, 2**16, n, dtype=np.uint32).astype(np.uint16)
    mask, clear = (0x7C00, 0xBFFF) if name == "F16" else (0x7F80, 0xBFFF)
    bad = (u & mask) == mask
    u[bad] &= np.uint16(clear)
    return u.view(np.uint8)


def exact_differs(name, blocks):
    """Elements where float32 evaluation differs from the exact value (formulas of gguf/quants.py
    evaluated in float64, where every one of these is exact)."""
    if name in ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0"):
        return 0  # a single exact product (or a plain value): float32 is exact
    b = blocks.reshape(-1, GGML_QUANT_SIZES[getattr(T, name)][1])
    f16 = lambda x: x.copy().view(np.float16).astype(np.float64)
    n = b.shape[0]
    if name in ("Q4_1", "Q5_1"):
        d, m = f16(b[:, 0:2]), f16(b[:, 2:4])
        if name == "Q4_1":
            qs = b[:, 4:20]
            q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float64)
        else:
            qh = b[:, 4:8].copy().view(np.uint32)
            qs = b[:, 8:24]
            lo = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.uint32)
            hi = (qh >> np.arange(32, dtype=np.uint32)) & 1
            q = (lo | hi << 4).astype(np.float64)
        exact = d * q + m
    elif name in ("Q4_K", "Q5_K"):
        d, dmin = f16(b[:, 0:2]), f16(b[:, 2:4])
        sc, mn = gguf.quants.Q4_K.get_scale_min(b[:, 4:16].copy())
        ds = (d * sc.astype(np.float64)).reshape(n, 8, 1)
        dm = (dmin * mn.astype(np.float64)).reshape(n, 8, 1)
        qs = b[:, 16:144] if name == "Q4_K" else b[:, 48:176]
        q = (qs.reshape(n, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)) & 15
        q = q.reshape(n, 8, 32).astype(np.uint32)
        if name == "Q5_K":
            qh = b[:, 16:48]
            q = q | ((qh.reshape(n, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)) & 1).astype(np.uint32) << 4
        exact = (ds * q.astype(np.float64) - dm).reshape(n, 256)
    else:  # Q6_K
        ql, qh, sc = b[:, 0:128], b[:, 128:192], b[:, 192:208].copy().view(np.int8)
        d = f16(b[:, 208:210])
        ds = (d * sc.astype(np.float64)).reshape(n, 16, 1)
        lo = (ql.reshape(n, 2, 1, 64) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)) & 15
        hi = (qh.reshape(n, 2, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)) & 3
        q = (lo.reshape(n, 256).astype(np.int32) | hi.reshape(n, 256).astype(np.int32) << 4) - 32
        exact = (ds * q.reshape(n, 16, 16).astype(np.float64)).reshape(n, 256)
    got = gguf.quants.dequantize(blocks, getattr(T, name)).astype(np.float64).reshape(exact.shape)
    return int(np.count_nonzero(got != exact))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(SEED)
    total = 0
    for name, (nblk, scale_at) in SPECS.items():
        qtype = getattr(T, name)
        blck, nbytes = GGML_QUANT_SIZES[qtype]
        if scale_at is None:
            data = plain_bytes(rng, name, nblk)
        else:
            data = rng.integers(0, 256, (nblk, nbytes), dtype=np.uint16).astype(np.uint8)
            for off in scale_at:
                data[:, off:off + 2] = moderate_halves(rng, nblk).view(np.uint8).reshape(nblk, 2)
            data = data.reshape(-1)
        assert data.size == nblk * nbytes
        expected = np.asarray(gguf.quants.dequantize(data, qtype), dtype=np.float32).reshape(-1)
        assert expected.size == nblk * blck and np.all(np.isfinite(expected)), name
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(data.tobytes())
        with open(os.path.join(OUT, name + ".f32"), "wb") as f:
            f.write(expected.astype("<f4").tobytes())
        total += data.size + 4 * expected.size
        print(f"{name:5s} {nblk} blocks, {expected.size:5d} elements, {data.size:5d} bytes; "
              f"float32 != exact in {exact_differs(name, data)} elements")
    print(f"wrote {OUT}/<TYPE>.bin and .f32: {total} bytes in all (gguf {gguf_version()}, numpy {np.__version__})")


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # noqa: BLE001 - only for the message
        return "?"


if __name__ == "__main__":
    sys.exit(main())
