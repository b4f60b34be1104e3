"""Make tests/data/gemma3/{tokenizer,greedy}.json with the real Hugging Face transformers on the Gemma 3 GGUF.

    sh tools/fetch_gemma3.sh                                   # the file, in ~/.cache/affix (make gemma3)
    /work/venv/bin/python tools/oracle/make_gemma3_vectors.py [--gguf PATH] [--only tokenizer|greedy]

The model is google/gemma-3-270m as llama.cpp's GGUF Q4_K_M (gemma-3-270m-q4_k_m.gguf, 253,113,024
bytes, sha256 a5fd3b62...; Gemma Terms of Use: the file is never copied into the repository, only ids
and logits computed from it). Both outputs are deterministic (no sampling; the fuzz texts come from a
fixed seed).

tokenizer.json: {"about", "versions", "gguf": {name, bytes, sha256}, "bos_ids": encode(""),
  "cases": [{"name", "text", "ids": encode(text) (add_special_tokens=True: BOS, HF's default for this
  tokenizer), "decoded": decode(ids) (absent: equal to
  decode(bos_ids) + text, i.e. "<bos>" + text), "decoded_skip": decode(ids,
  skip_special_tokens=True) (absent: equal to the text)}]}
  decode is the tokenizers library's Tokenizer.decode (= transformers' decode here, checked; no
  clean_up_tokenization_spaces). Texts: the 75 texts of tests/data/vocab/multilingual.json, the 46
  llama.cpp test strings (tests/data/vocab/llama.cpp/ggml-vocab-llama-spm.gguf.inp), edge cases
  (whitespace runs, control tokens in text, NBSP, CRLF, combining marks, U+2581 next to spaces,
  emoji, digits, scripts), every run of 1..72 spaces / U+2581, and 200 seeded random mixes of them.

greedy.json: for each prompt, BOS + prompt -> Gemma3ForCausalLM (float32, eager attention) greedy
  generate(max_new_tokens=16, do_sample=False): prompt ids, generated ids (without the prompt; ends
  early at EOS), per generated step the gap between the best and second-best logit (a small gap is a
  step a float32 reimplementation may legitimately flip), and the logits at the last prompt position
  (top-20 ids and values, max |logit|, argmax) from a plain forward of the prompt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "tests", "data", "gemma3")
NAME = "gemma-3-270m-q4_k_m.gguf"
SIZE = 253113024
SHA = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

PROMPTS = [
    ("en", "The capital of France is"),
    ("de", "Die Hauptstadt von Deutschland ist"),
    ("zh", "中国的首都是"),
    ("ru", "Столица России —"),
    ("hi", "भारत की राजधानी"),
]

EDGE = [
    ("empty", ""),
    ("space", " "),
    ("two_spaces", "  "),
    ("spaces_words", "  x   y    z     "),
    ("lead_trail", "   Hello world   "),
    ("newline", "\n"),
    ("newlines", "a\n\nb\n\n\n\nc"),
    ("newline_run_40", "\n" * 40),
    ("tabs", "\tx\t\ty\t\t\t"),
    ("tab_run_40", "\t" * 40),
    ("mixed_ws", " \n \t \n\n  \t\t   \r\n"),
    ("space_newline_runs", "a  \n  b   \n\n   c"),
    ("crlf", "line one\r\nline two\r\n\r\nend"),
    ("cr_only", "a\rb\r\rc"),
    ("chat", "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"),
    ("bos_in_text", "a<bos>b <bos> <bos><bos>"),
    ("eos_pad_unk_mask", "<eos><pad><unk><mask>"),
    ("specials_spaced", " <start_of_turn> user <end_of_turn> "),
    ("html_tags", "<table><tr><td>1</td></tr></table>"),
    ("multimodal", "[multimodal] <start_of_image> <end_of_image>"),
    ("unused", "<unused0><unused98> <unused99>"),
    ("byte_token_text", "<0x0A> <0x41><0xFF>"),
    ("partial_special", "<start_of_tur <bos <eos>>"),
    ("nbsp", "a\u00a0b \u00a0 \u00a0\u00a0c"),
    ("narrow_nbsp_ideo", "x\u202fy\u3000z\u2009w"),
    ("combining", "e\u0301 a\u0308\u0308 n\u0303o Ca\u0300 phe\u0302\u0309"),
    ("nfc_nfd", "\u00e9 e\u0301 \u00c5 A\u030a"),
    ("sp_u2581", "\u2581"),
    ("sp_u2581_spaces", "<0x0A> <unk> \u2581 \u2581\u2581x \u2581"),
    ("u2581_mix", " \u2581 \u2581\u2581 \u2581\u2581\u2581   x\u2581y \u2581the"),
    ("emoji", "👍 👍🏽 👨‍👩‍👧 🇩🇪 😀😃😄"),
    ("digits", "0123456789 3.14159 1,000,000 2025-12-01 99%"),
    ("control_chars", "a\x01b\x7fc\x1bd"),
    ("thai", "ภาษาไทยเป็นภาษาที่สวยงาม"),
    ("devanagari", "हिन्दी भाषा बहुत सुन्दर है। क्षत्रिय"),
    ("korean", "한국어는 아름다운 언어입니다. 뷁"),
    ("japanese", "日本語の文章です。カタカナとひらがな"),
    ("greek", "Η ελληνική γλώσσα είναι όμορφη"),
    ("cyrillic", "Русский язык — великий и могучий"),
    ("arabic", "اللغة العربية جميلة"),
    ("hebrew", "עברית היא שפה יפה"),
    ("long_word", "Donaudampfschifffahrtsgesellschaftskapitän"),
    ("code", "def f(x):\n    return x  # two spaces\n\n\tpass\n"),
    ("punct", "Hello, world! How are you? (fine) [ok] {x} \"q\" 'a' -- ..."),
    ("url", "https://example.com/a?b=c&d=e#f"),
    ("rare_cjk", "籙膂蟳푎𝔹"),
]


def versions():
    import tokenizers
    import transformers
    v = {"python": platform.python_version(), "transformers": transformers.__version__,
         "tokenizers": tokenizers.__version__}
    try:
        from importlib.metadata import version
        v["gguf"] = version("gguf")
    except Exception:  # noqa: BLE001
        v["gguf"] = None
    try:
        import torch
        v["torch"] = torch.__version__
    except ImportError:
        pass
    try:
        import numpy
        v["numpy"] = numpy.__version__
    except ImportError:
        pass
    return v


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def texts():
    out = []
    with open(os.path.join(REPO, "tests", "data", "vocab", "multilingual.json"), encoding="utf-8") as f:
        for t in json.load(f)["texts"]:
            out.append(("multilingual." + t["name"], t["text"]))
    with open(os.path.join(REPO, "tests", "data", "vocab", "llama.cpp", "ggml-vocab-llama-spm.gguf.inp"),
              encoding="utf-8", newline="") as f:
        for k, t in enumerate(f.read().split("\n__ggml_vocab_test__\n")[:-1]):
            out.append(("llama.cpp.%02d" % k, t))
    out += [("edge." + n, t) for n, t in EDGE]
    for k in range(1, 73):
        out.append(("run.spaces.%d" % k, "x" + " " * k + "y"))
        out.append(("run.u2581.%d" % k, "\u2581" * k))
    rng = random.Random(20251201)
    alphabet = [" ", " ", " ", "\u2581", "\n", "\t", "\r\n", "a", "b", "ab", "x", "the", " the", "<", ">", "bos",
                "<bos>", "<start_of_turn>", "é", "e\u0301", "中", "文", "😀", "\u00a0", "0", "12", ".", "ो", "ก"]
    for k in range(200):
        out.append(("fuzz.%03d" % k, "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))))
    names = [n for n, _ in out]
    assert len(names) == len(set(names))
    for n, t in out:
        assert "\x00" not in t, n  # the C test reads the texts with cJSON (NUL-terminated strings)
    return out


def make_tokenizer(gguf_path, about_gguf):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
    back = tok.backend_tokenizer
    cases = []
    bos_text = back.decode(tok.encode(""), skip_special_tokens=False)  # "<bos>"
    for name, text in texts():
        ids = tok.encode(text)  # add_special_tokens=True
        assert ids == back.encode(text, add_special_tokens=True).ids, name
        dec = back.decode(ids, skip_special_tokens=False)
        dec_skip = back.decode(ids, skip_special_tokens=True)
        assert dec == tok.decode(ids, skip_special_tokens=False), name
        assert dec_skip == tok.decode(ids, skip_special_tokens=True), name
        case = {"name": name, "text": text, "ids": ids}
        if dec != bos_text + text:
            case["decoded"] = dec
        if dec_skip != text:
            case["decoded_skip"] = dec_skip
        cases.append(case)
    n_tok = sum(len(c["ids"]) for c in cases)
    doc = {
        "about": "Gemma 3 tokenizer test vectors for affix (tests/test_gemma3_tok.c), made by "
                 "tools/oracle/make_gemma3_vectors.py: transformers AutoTokenizer.from_pretrained(dir, gguf_file=...) "
                 "on the GGUF named below (%s). ids: tokenizer.encode(text) (add_special_tokens=True: BOS); "
                 "decoded / decoded_skip: the tokenizers library's decode(ids, skip_special_tokens=False / True), "
                 "absent where equal to decode(bos_ids) + text / to the text. "
                 "%d texts, %d ids." % (type(tok).__name__, len(cases), n_tok),
        "versions": versions(),
        "gguf": about_gguf,
        "bos_ids": tok.encode(""),
        "cases": cases,
    }
    return doc


def make_greedy(gguf_path, about_gguf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    d, f = os.path.dirname(gguf_path), os.path.basename(gguf_path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    gc = model.generation_config
    out = []
    for lang, prompt in PROMPTS:
        ids = tok.encode(prompt)  # BOS + prompt
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=x).logits[0, -1].double()
            g = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=16, do_sample=False,
                               output_scores=True, return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
        gen = g.sequences[0, len(ids):].tolist()
        gaps = []
        for s in g.scores:
            top2 = torch.topk(s[0].double(), 2).values
            gaps.append(float(top2[0] - top2[1]))
        top = torch.topk(logits, 20)
        out.append({
            "lang": lang, "prompt": prompt, "prompt_ids": ids, "generated_ids": gen,
            "generated_text": tok.decode(gen, skip_special_tokens=False),
            "step_top2_gap": gaps[:len(gen)],
            "last_logits": {"top20_ids": top.indices.tolist(), "top20_values": top.values.tolist(),
                            "max_abs": float(logits.abs().max()), "argmax": int(logits.argmax())},
        })
        assert gen[0] == out[-1]["last_logits"]["argmax"], (lang, gen[0])
        print("%s: %r -> %r (min gap %.3g)" % (lang, prompt, out[-1]["generated_text"], min(gaps)), file=sys.stderr)
    return {
        "about": "Greedy continuations of the Gemma 3 GGUF by transformers, for affix (tests/test_gemma3.sh), made by "
                 "tools/oracle/make_gemma3_vectors.py: AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., "
                 "dtype=torch.float32, attn_implementation='eager'); generate(BOS + prompt, max_new_tokens=16, "
                 "do_sample=False) (ends early at EOS); step_top2_gap: best minus second-best logit at each generated "
                 "step; last_logits: forward(BOS + prompt) at the last position (float32 logits, values as float64).",
        "versions": versions(),
        "gguf": about_gguf,
        "model_class": type(model).__name__,
        "generation_config": {k: v for k, v in gc.to_dict().items()
                              if k in ("eos_token_id", "bos_token_id", "pad_token_id", "do_sample", "top_k", "top_p",
                                       "temperature", "repetition_penalty", "max_length")},
        "prompts": out,
    }


def write(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)
    print("wrote %s (%d bytes)" % (os.path.relpath(path, REPO), os.path.getsize(path)), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cache = os.environ.get("AFFIX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "affix")
    ap.add_argument("--gguf", default=os.path.join(cache, NAME))
    ap.add_argument("--only", choices=["tokenizer", "greedy"])
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    if not os.path.isfile(a.gguf):
        sys.exit("%s: not found (sh tools/fetch_gemma3.sh fetches it)" % a.gguf)
    about = {"name": NAME, "bytes": os.path.getsize(a.gguf), "sha256": sha256(a.gguf)}
    if about["bytes"] != SIZE or about["sha256"] != SHA:
        sys.exit("%s: not the expected file (size %d, sha256 %s)" % (a.gguf, about["bytes"], about["sha256"]))
    if a.only in (None, "tokenizer"):
        write(os.path.join(a.out, "tokenizer.json"), make_tokenizer(a.gguf, about))
    if a.only in (None, "greedy"):
        write(os.path.join(a.out, "greedy.json"), make_greedy(a.gguf, about))


if __name__ == "__main__":
    main()
