"""Make the tokenizer files and test vectors of tests/data/vocab/ with the real Hugging Face tokenizers.

What it writes (run from the repository root; shared/ is the data folder beside the repo):

    /work/venv/bin/python tools/oracle/make_tokenizer_vectors.py [--shared ../shared/data]

  tests/data/vocab/llama3/tokenizer.json   Meta's Llama 3 tiktoken file (llama3-tiktoken/tokenizer.model)
        converted by transformers' TikTokenConverter (the conversion HF uses for tiktoken files): BPE with
        ranks as ids, merges derived from the ranks, ignore_merges, Split(Llama 3 regex, isolated) +
        ByteLevel(use_regex=false), the 256 Llama 3 special tokens, and, as in Meta's published
        tokenizer.json, a TemplateProcessing post-processor that prepends <|begin_of_text|>. Merges are
        stored as "a b" strings (the form of the published file; tokenizers reads both forms).
  tests/data/vocab/llama2/tokenizer.json   Meta's Llama 2 SentencePiece model (llama2-spm/tokenizer.model)
        converted by transformers' LlamaTokenizer, then given the *legacy* normalizer of the published
        Llama-2-7b-hf tokenizer.json (Prepend "▁" + Replace " " -> "▁", no pre-tokenizer) and its BOS
        post-processor. transformers 5 converts to a non-legacy Metaspace(prepend_scheme="first")
        pre-tokenizer instead; that variant is checked too (key "llama2-metaspace": the C test derives it
        from this file by swapping normalizer/pre_tokenizer), and it does NOT reproduce llama.cpp's
        .out vectors for texts that start with a space (it prepends "▁" only if none is there).
  tests/data/vocab/multilingual.json       texts + the ids and decodings that the real tokenizers give.
  tests/data/vocab/synthetic.json          small tokenizers for the pipeline parts the Llama files do not
        use (Split behaviors, Metaspace split, lstrip/rstrip, Strip, no decoder, ...) with HF's results.

Every converted tokenizer is first checked against llama.cpp's 46 .inp/.out vectors (the script stops
if one differs). GPT-2's tokenizer is transformers' GGUF loader applied to ggml-vocab-gpt-2.gguf.

multilingual.json format:
  {"about": ..., "texts": [{"name", "source", "license", "text"}...],
   "tokenizers": {KEY: {"source": what it was built from,
                        "bos_ids": encode("", add_special_tokens=True),
                        "cases": [{"ids": encode(text, add_special_tokens=False),
                                   "decoded": decode(ids) (absent: equal to the text),
                                   "decoded_skip": decode(ids, skip_special_tokens=True) (absent: equal
                                   to decoded)} ... one per text, same order],
                        "decode_only": [{"ids", "decoded", "decoded_skip"}: decoder edge cases (partial
                                        UTF-8, byte fallback, prefix strip, specials)]}}}
  decode is the tokenizers library's Tokenizer.decode (no transformers clean_up_tokenization_spaces).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys

import tokenizers
import transformers
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, LlamaTokenizer
from transformers.convert_slow_tokenizer import TikTokenConverter, generate_merges, import_protobuf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "tests", "data", "vocab")

LLAMA3_SPECIAL = (["<|begin_of_text|>", "<|end_of_text|>"]
                  + [f"<|reserved_special_token_{i}|>" for i in range(4)]
                  + ["<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>"]
                  + [f"<|reserved_special_token_{i}|>" for i in range(5, 251)])
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def read_vectors(vocab_dir: str, name: str):
    with open(os.path.join(vocab_dir, f"ggml-vocab-{name}.gguf.inp"), encoding="utf-8", newline="") as f:
        inp = f.read().split("\n__ggml_vocab_test__\n")[:-1]
    with open(os.path.join(vocab_dir, f"ggml-vocab-{name}.gguf.out"), encoding="utf-8") as f:
        out = [[int(x) for x in line.split()] for line in f.read().split("\n")[: len(inp)]]
    assert len(inp) == len(out) == 46, (name, len(inp), len(out))
    return inp, out


def check_vectors(tok: Tokenizer, vectors, what: str, expect_all=True) -> int:
    ok = 0
    for text, ids in zip(*vectors):
        got = tok.encode(text, add_special_tokens=False).ids
        if got == ids:
            ok += 1
        elif expect_all:
            sys.exit(f"{what}: {text!r} gives {got}, llama.cpp's .out says {ids}")
    print(f"{what}: {ok}/46 llama.cpp vectors")
    return ok


def build_llama3(shared: str) -> Tokenizer:
    conv = TikTokenConverter(vocab_file=os.path.join(shared, "vocab/llama3-tiktoken/tokenizer.model"),
                             pattern=LLAMA3_REGEX, extra_special_tokens=LLAMA3_SPECIAL)
    tok = conv.converted()
    assert tok.get_vocab_size() == 128256 and tok.token_to_id("<|begin_of_text|>") == 128000
    assert tok.token_to_id("<|eot_id|>") == 128009
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", 128000)]),
    ])
    return tok


def build_llama2(shared: str, tmp: str) -> tuple[Tokenizer, Tokenizer]:
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(shared, "vocab/llama2-spm/tokenizer.model"), "rb") as f:
        data = f.read()
    with open(os.path.join(tmp, "tokenizer.model"), "wb") as f:
        f.write(data)
    hf = LlamaTokenizer.from_pretrained(tmp)
    pb2 = import_protobuf()
    metaspace = Tokenizer.from_str(hf.backend_tokenizer.to_str())  # transformers 5's own conversion
    bos = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", 1)])
    metaspace.post_processor = bos
    # transformers 5 orders the merges by vocabulary id, which puts the whitespace pieces "▁▁", "▁▁▁▁"
    # (SentencePiece score -1e9) first and gives [259, 10994, 3186] for " Hello world" where
    # SentencePiece gives [29871, 15043, 3186]. The published Llama 2 tokenizer.json has its merges
    # ordered by piece score (transformers 4's LlamaConverter: generate_merges(vocab, vocab_scores)):
    # rebuild them that way.
    legacy = Tokenizer.from_str(hf.backend_tokenizer.to_str())
    proto = pb2.ModelProto()
    proto.ParseFromString(data)
    scores = {p.piece: p.score for p in proto.pieces}
    j = json.loads(legacy.to_str())
    vocab = j["model"]["vocab"]
    assert all(vocab[p.piece] == i for i, p in enumerate(proto.pieces))
    merges = generate_merges(vocab, {k: scores[k] for k in vocab})
    j["model"]["merges"] = [[a, b] for a, b in merges]
    legacy = Tokenizer.from_str(json.dumps(j))
    metaspace = Tokenizer.from_str(json.dumps(j))
    metaspace.post_processor = bos
    legacy.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    legacy.pre_tokenizer = None
    legacy.post_processor = bos
    return legacy, metaspace


def save_json(tok: Tokenizer, path: str, string_merges: bool) -> None:
    j = json.loads(tok.to_str())
    if string_merges:
        assert all(" " not in a and " " not in b for a, b in j["model"]["merges"])
        j["model"]["merges"] = [f"{a} {b}" for a, b in j["model"]["merges"]]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)")


# ---- the texts --------------------------------------------------------------------------------------

def texts(shared: str):
    out = []
    xq = "XQuAD (google-deepmind/xquad), CC BY-SA 4.0"
    for lang in "ar de el en es hi ro ru th tr vi zh".split():
        with open(os.path.join(shared, f"xquad/xquad.{lang}.json"), encoding="utf-8") as f:
            d = json.load(f)
        # the same (parallel) paragraphs in every language: article 0 paragraph 0, article 5 paragraph 1
        out.append((f"xquad.{lang}.0.0", xq, d["data"][0]["paragraphs"][0]["context"]))
        out.append((f"xquad.{lang}.5.1", xq, d["data"][5]["paragraphs"][1]["context"]))
    mg = "MGSM (google-research/url-nlp), CC BY 4.0"
    for lang in "bn de en es fr ja ru sw te th zh".split():
        with open(os.path.join(shared, f"mgsm/mgsm_{lang}.tsv"), encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        for i in (0, 7):
            out.append((f"mgsm.{lang}.{i}", mg, rows[i][0]))
    xn = "XNLI test, CC BY-NC 4.0"

    def tsv(path, header):
        with open(os.path.join(shared, path), encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        return rows[1:] if header else rows
    for lang, path, cols, header, lic in [
            ("sw", "xnli/myxnli/sw.genre.test.tsv", (2, 3), True, xn + " (akhtet/myXNLI copy)"),
            ("ur", "xnli/myxnli/ur.genre.test.tsv", (2, 3), True, xn + " (akhtet/myXNLI copy)"),
            ("de", "xnli/de-xglue/test.txt", (0, 1), False, xn + " (XGLUE copy)"),
            ("zh", "xnli/zh-ernie/test.tsv", (0, 1), True, xn + " (PaddlePaddle ERNIE copy)"),
            ("ko", "xnli/ko-kornli/xnli.test.ko.tsv", (0, 1), True, "KorNLI (kakaobrain), CC BY-SA 4.0"),
            ("my", "xnli/myxnli/my.genre.test.tsv", (4, 5), True, "myXNLI (akhtet/myXNLI), CC BY-NC 4.0")]:
        rows = tsv(path, header)
        for i in (0, 100):
            out.append((f"xnli.{lang}.{i}", lic, rows[i][cols[0]] + "\n" + rows[i][cols[1]]))
    own = "written for affix's tests"
    for i, s in enumerate([
            "<|begin_of_text|>Hello<|eot_id|> world <|end_of_text|>",
            "<s>Hello</s> world <unk> <s> <s>x",
            "a<|endoftext|>b <|endoftext|>\n<|endoftext|>",
            " <s>  leading and trailing spaces  </s> ",
            "tabs\tand\r\nCRLF\r\n\r\nand   many     spaces\n\n\n  \t ",
            "NEL\u0085x NBSP\u00a0y ideographic\u3000z thin\u2009w line\u2028sep para\u2029sep zwsp\u200bq",
            "emoji 🦙🦙 👩‍👩‍👧 ZWJ, flags 🇩🇪🇯🇵, skin 👍🏽, keycap 1️⃣",
            "combining: e\u0301 a\u0308 n\u0303; precomposed: é ä ñ; Hangul jamo \u1100\u1161\u11a8",
            "digits 1234567890 ١٢٣٤٥ ०१२३ 12,345.678 3.14e-10 0x1F",
            "CJK 漢字かなカナ한국어 𠀀𠀁 (astral) 丶 and PUA \ue000\U000f0000",
            "contractions: I'm you're he'll we've they'd it's DON'T I'M We'Ve",
            "symbols: ~!@#$%^&*()_+`-=[]{}|;':\",./<>? ……—–‘’“” §±×÷",
            "<0x0A> <unk> ▁ ▁▁x U+2581 written literally",
            "\u0001 control chars \u0002\u001f\u007f end (NUL is tested in C: cJSON strings cannot hold it)",
            "  \n  \n",
            "a",
            "case folding it'ſ it'S IT'ſ k\u212Ak'K; Unicode 15 letters x\U0001E030y \U00031350; BOM a\ufeffb "
            "MVS a\u180eb; isolate x\u2066y; soft\u00adhyphen; \u0085\u0085x",
    ]):
        out.append((f"own.{i}", own, s))
    return out


def encode_cases(tok: Tokenizer, items):
    """decoded is left out where it equals the text, decoded_skip where it equals decoded"""
    cases = []
    for _, _, text in items:
        ids = tok.encode(text, add_special_tokens=False).ids
        c = {"ids": ids}
        dec, dec_skip = tok.decode(ids, skip_special_tokens=False), tok.decode(ids, skip_special_tokens=True)
        if dec != text:
            c["decoded"] = dec
        if dec_skip != dec:
            c["decoded_skip"] = dec_skip
        cases.append(c)
    return cases


def decode_only_ids(key: str, tok: Tokenizer):
    """id lists whose decoding shows the decoder's edge cases: partial UTF-8 (U+FFFD), byte
    fallback, the dummy-prefix strip, special tokens with and without skip."""
    if key.startswith("llama2"):
        b = lambda *xs: [3 + x for x in xs]  # <0xNN> is id 3 + NN
        return [[], [29871], [29871, 29871], [259], [1], [1, 15043], [15043, 1, 15043, 2], b(0xE2), b(0xE2, 0x82),
                b(0xE2, 0x82, 0xAC), [15043] + b(0xE2, 0x82) + [15043], b(0xFF, 0x41), b(0xF0, 0x9F, 0xA6, 0x99),
                b(0xC0, 0xAF), b(0xED, 0xA0, 0x80), [0], [0, 15043], [13], [29871, 13], [2, 2]]
    bytes_to_unicode = __import__("transformers.convert_slow_tokenizer", fromlist=["bytes_to_unicode"]).bytes_to_unicode()
    b = lambda *xs: [tok.token_to_id(bytes_to_unicode[x]) for x in xs]
    hello = tok.encode("Hello", add_special_tokens=False).ids
    sp = tok.token_to_id("<|begin_of_text|>") if key == "llama3" else tok.token_to_id("<|endoftext|>")
    return [[], b(0xE2), b(0xE2, 0x82), b(0xE2, 0x82, 0xAC), hello + b(0xE2, 0x82) + hello, b(0xFF, 0x41),
            b(0xF0, 0x9F, 0xA6, 0x99), b(0xC0, 0xAF), b(0xED, 0xA0, 0x80), b(0xF4, 0x90, 0x80, 0x80), b(0x80, 0x80),
            b(0xE0, 0x80), b(0xF0, 0x9F, 0x41), [sp], [sp] + hello + [sp], b(0x20) + hello, b(0x0A, 0x0D, 0x09, 0x01)]


def synthetic_tokenizers():
    """Small tokenizers built with the tokenizers library for the pipeline parts that the real Llama
    files do not use: every Split behavior (and invert), Metaspace with split and prepend 'always',
    ByteLevel with add_prefix_space and its own regex, added tokens with lstrip/rstrip and non-special
    ones, unk with fuse_unk, byte fallback, the Strip/Replace/Metaspace decoders, no decoder at all
    (tokens joined by spaces), a BOS+EOS template."""
    from tokenizers import AddedToken, decoders, models
    chars = [chr(c) for c in range(0x21, 0x7F)] + ["▁"]
    vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    # b-, -a and ,c come first: they join a delimiter to its neighbour only when the split lets them
    merges = [("b", "-"), ("-", "a"), (",", "c"), ("a", "b"), ("ab", "c"), ("▁", "a"), ("▁a", "b"), ("-", "-"),
              ("c", "d"), ("x", "y")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    out = []

    def bpe(**kw):
        return models.BPE(vocab=dict(vocab), merges=list(merges), **kw)
    texts = ["ab-abc,,cd--xy", "-ab-", "a,b,,c", "--", "abc abcd  xy ", " a b ", "", "\u00e9\u4e2d!"]
    for behavior in ["isolated", "removed", "merged_with_previous", "merged_with_next", "contiguous"]:
        for invert in (False, True):
            t = Tokenizer(bpe(unk_token="[UNK]"))
            t.pre_tokenizer = pre_tokenizers.Split(tokenizers.Regex("[-,]+" if behavior == "contiguous" else "[-,]"),
                                                   behavior=behavior, invert=invert)
            out.append((f"split-{behavior}-{'inverted' if invert else 'plain'}", t, texts))
    t = Tokenizer(bpe(unk_token="[UNK]", fuse_unk=True))
    t.pre_tokenizer = pre_tokenizers.Split(" ", behavior="removed")  # a String pattern
    out.append(("split-string-unk-fused", t, ["ab\u00e9\u00e9\u00e9 cd \u4e2d\u4e2dx", "  ", "\u00e9"]))
    t = Tokenizer(bpe(byte_fallback=True))
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    t.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="always")])
    t.add_special_tokens(["<s>", "</s>"])
    t.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    out.append(("metaspace-split-always", t, ["ab abc  \u00e9x", " ab", "▁ab ▁", "<s>ab</s> cd", "\U0001F999!"]))
    t = Tokenizer(bpe(byte_fallback=True))
    t.normalizer = normalizers.Replace(" ", "▁")
    t.add_tokens([AddedToken("[SEP]", lstrip=True, rstrip=True, special=True), AddedToken("abc", special=False),
                  AddedToken("[MASK]", rstrip=True, special=True)])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(content=" ", left=1, right=2)])
    out.append(("added-lstrip-rstrip-strip", t, ["x [SEP] y", "x  [SEP]\t\ny", "[SEP]", " abcd abc[MASK]  z  ",
                                                  "\u00e9 [MASK]", "  ab  "]))
    t = Tokenizer(bpe())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    t.decoder = decoders.ByteLevel()
    out.append(("no-decoder-bytelevel-prefix", t, ["ab abc's xy", " ab", "a\nb"]))  # ids via the byte-level map; no decoder
    t = Tokenizer(bpe())
    t.pre_tokenizer = pre_tokenizers.Split(" ", behavior="isolated")
    out.append(("no-decoder", t, ["ab abc  cd", "x"]))
    return out


def synthetic_doc():
    docs = []
    for name, tok, texts in synthetic_tokenizers():
        cases = []
        for text in texts:
            ids = tok.encode(text, add_special_tokens=False).ids
            try:
                dec, dec_skip = tok.decode(ids, skip_special_tokens=False), tok.decode(ids, skip_special_tokens=True)
            except BaseException as ex:  # pyo3 panics derive from BaseException
                print(f"  synthetic {name}: HF decode of {text!r} panics ({type(ex).__name__}): case left out")
                continue
            cases.append({"text": text, "ids": ids, "ids_bos": tok.encode(text, add_special_tokens=True).ids,
                          "decoded": dec, "decoded_skip": dec_skip})
        docs.append({"name": name, "tokenizer": json.loads(tok.to_str()), "cases": cases})
    return docs


def check_tiktoken(shared: str, llama3: Tokenizer, items) -> None:
    """The tiktoken library itself (Meta's tokenizer.py setup, all special tokens allowed) agrees with
    the converted tokenizer.json on every text: the two sources of the C tests mean one thing."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    ranks = load_tiktoken_bpe(os.path.join(shared, "vocab/llama3-tiktoken/tokenizer.model"))
    enc = tiktoken.Encoding("llama3", pat_str=LLAMA3_REGEX, mergeable_ranks=ranks,
                            special_tokens={s: 128000 + i for i, s in enumerate(LLAMA3_SPECIAL)})
    for name, _, text in items:
        a, b = enc.encode(text, allowed_special="all"), llama3.encode(text, add_special_tokens=False).ids
        if a != b:
            sys.exit(f"tiktoken and the converted tokenizer.json differ on {name}: {a[:20]}... vs {b[:20]}...")
    print(f"tiktoken {tiktoken.__version__} == llama3 tokenizer.json on all {len(items)} texts")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    ap.add_argument("--tmp", default="/tmp/affix_tok_oracle")
    a = ap.parse_args()
    shared = a.shared
    vocab_dir = os.path.join(shared, "vocab/llama.cpp-vocab")

    llama3 = build_llama3(shared)
    check_vectors(llama3, read_vectors(vocab_dir, "llama-bpe"), "llama3 tokenizer.json")
    llama2, llama2_ms = build_llama2(shared, a.tmp)
    check_vectors(llama2, read_vectors(vocab_dir, "llama-spm"), "llama2 tokenizer.json (legacy normalizer)")
    check_vectors(llama2_ms, read_vectors(vocab_dir, "llama-spm"), "llama2 tokenizer.json (transformers 5 Metaspace)",
                  expect_all=False)
    gpt2 = Tokenizer.from_str(AutoTokenizer.from_pretrained(vocab_dir, gguf_file="ggml-vocab-gpt-2.gguf")
                              .backend_tokenizer.to_str())
    check_vectors(gpt2, read_vectors(vocab_dir, "gpt-2"), "gpt-2 (transformers' GGUF loader)")

    save_json(llama3, os.path.join(OUT, "llama3", "tokenizer.json"), string_merges=True)
    save_json(llama2, os.path.join(OUT, "llama2", "tokenizer.json"), string_merges=False)
    # the saved files are what the tests load: check that they give the same
    for path, tok in [("llama3", llama3), ("llama2", llama2)]:
        again = Tokenizer.from_file(os.path.join(OUT, path, "tokenizer.json"))
        assert again.to_str() == tok.to_str() or all(
            again.encode(t).ids == tok.encode(t).ids for t in read_vectors(vocab_dir, "llama-bpe")[0])

    items = texts(shared)
    check_tiktoken(shared, llama3, items)
    doc = {
        "about": "Tokenizer test vectors for affix, made by tools/oracle/make_tokenizer_vectors.py with "
                 f"tokenizers {tokenizers.__version__} / transformers {transformers.__version__}. ids: "
                 "encode(text, add_special_tokens=False); decoded: Tokenizer.decode(ids), absent where it equals the "
                 "text; decoded_skip: decode(ids, skip_special_tokens=True), absent where it equals decoded; "
                 "bos_ids: encode('', add_special_tokens=True). Texts: see each text's source and license.",
        "texts": [{"name": n, "source": s, "text": t} for n, s, t in items],
        "tokenizers": {},
    }
    for key, tok, src in [
            ("llama3", llama3, "tests/data/vocab/llama3/tokenizer.json (= llama3-tiktoken/tokenizer.model)"),
            ("llama2", llama2, "tests/data/vocab/llama2/tokenizer.json (legacy normalizer; = ggml-vocab-llama-spm.gguf)"),
            ("llama2-metaspace", llama2_ms, "llama2/tokenizer.json with normalizer null and pre_tokenizer "
             "Metaspace(replacement '▁', prepend_scheme 'first', split false), as transformers 5 converts it"),
            ("gpt2", gpt2, "ggml-vocab-gpt-2.gguf via transformers' GGUF loader")]:
        doc["tokenizers"][key] = {"source": src, "bos_ids": tok.encode("", add_special_tokens=True).ids,
                                  "cases": encode_cases(tok, items),
                                  "decode_only": [{"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                                                   "decoded_skip": tok.decode(ids, skip_special_tokens=True)}
                                                  for ids in decode_only_ids(key, tok)]}
    path = os.path.join(OUT, "multilingual.json")
    with open(path, "w", encoding="utf-8", newline="\n") as f:  # JSON with one text / one case per line
        c = lambda x: json.dumps(x, ensure_ascii=False, separators=(",", ":"))
        f.write('{"about":' + c(doc["about"]) + ',\n"texts":[\n' + ",\n".join(c(x) for x in doc["texts"]) + '],\n"tokenizers":{')
        for k, (key, tk) in enumerate(doc["tokenizers"].items()):
            f.write(("," if k else "") + "\n" + c(key) + ':{"source":' + c(tk["source"]) + ',"bos_ids":' + c(tk["bos_ids"]))
            for part in ("cases", "decode_only"):
                f.write(',\n"' + part + '":[\n' + ",\n".join(c(x) for x in tk[part]) + "]")
            f.write("}")
        f.write("}}\n")
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == doc
    path = os.path.join(OUT, "synthetic.json")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write('{"about":"small tokenizers made with the tokenizers library for pipeline parts the Llama files '
                'do not use (tools/oracle/make_tokenizer_vectors.py synthetic_tokenizers); ids_bos: '
                'add_special_tokens=True","tokenizers":[\n')
        f.write(",\n".join(json.dumps(d, ensure_ascii=False, separators=(",", ":")) for d in synthetic_doc()))
        f.write("]}\n")
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)")
    n_ids = sum(len(c["ids"]) for t in doc["tokenizers"].values() for c in t["cases"])
    print(f"wrote {os.path.relpath(path, REPO)}: {len(items)} texts x {len(doc['tokenizers'])} tokenizers, "
          f"{n_ids} ids ({os.path.getsize(path)} bytes)")
    for p in ["llama3/tokenizer.json", "llama2/tokenizer.json", "multilingual.json", "synthetic.json"]:
        with open(os.path.join(OUT, p), "rb") as f:
            print(f"sha256 {hashlib.sha256(f.read()).hexdigest()}  {p}")


if __name__ == "__main__":
    main()
