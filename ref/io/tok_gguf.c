/* tok_gguf.c — a Tokenizer from the tokenizer.ggml.* metadata of a GGUF file (read with gguf.h).
 *
 * tokenizer.ggml.model = "llama": SentencePiece-style BPE. tokens + scores + token_type; merges are
 * implied by the scores (pair l, r -> l+r when all three are tokens, highest score first, leftmost
 * on ties, as llama.cpp and SentencePiece merge); byte fallback to <0xNN>; the text is normalized as
 * HF's Llama 2 tokenizer.json does (Prepend "▁" to each text segment, spaces -> "▁"; no prefix when
 * tokenizer.ggml.add_space_prefix is false) and decoded with Replace/ByteFallback/Fuse/Strip.
 * tokenizer.ggml.model = "gpt2": byte-level BPE with tokenizer.ggml.merges (ranked in order) and
 * the pre-tokenizer named by tokenizer.ggml.pre: "gpt-2"/"default" (GPT-2's regex) or
 * "llama-bpe"/"llama3"/"smaug-bpe" (Llama 3's regex, whole words looked up first).
 * Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte;
 * unknown/control/user-defined tokens are matched literally in the text (as HF's added tokens);
 * unknown and control ones are the "special" tokens that decode(skip_special) drops.
 * general.architecture gemma / gemma2 / gemma3 with tokenizer.ggml.model = "llama": what HF's GGUF
 * loader builds for these (transformers integrations/gguf/gguf_tokenizer_mapping.py, gemma_tokenizer
 * + GemmaTokenizer; only these three architectures, so only they get it here):
 *   - a token holding a space and nothing but whitespace (Gemma's 30 runs of 2..31 spaces, ids
 *     138..167, stored with real spaces, user-defined) is respelled "▁" x its length in characters
 *     and is ordinary vocabulary, reached by merges ("▁▁" + "▁▁▁" -> "▁▁▁▁▁"), not an added token:
 *     HF respells them in the vocabulary and adds a user-defined token as a literal only if its file
 *     spelling is still a vocabulary key, which the real-space one no longer is (GemmaTokenizer turns
 *     spaces into "▁" before BPE anyway). Text "▁ ▁" (a literal U+2581 beside spaces) thus becomes
 *     one token, as in HF. Runs of newlines / tabs hold no space: they stay literal added tokens in
 *     both. (A control token of spaces, which HF would add under its real-space spelling with a new
 *     id, exists in no Gemma file; all 30 here are user-defined.)
 *   - merges ranked by position in the file (lower id first), not by score: HF's choice for Gemma
 *     ("Gemma's scores do not follow its merge order"). For Gemma 3's normal tokens the two agree
 *     (score = -(id - 494) on every token of two or more characters); they differ on the respelled
 *     runs (score -1000, as every control/user-defined token) and the byte tokens (score 0).
 *   - no "▁" prefix whatever tokenizer.ggml.add_space_prefix says (GemmaTokenizer has no Prepend
 *     normalizer; Gemma GGUFs say false anyway).
 *   Not done: HF orders the splits of one merged token longest-left-part first, here they share one
 *   priority and the leftmost pair merges first; this differs only for a window x y z with x+y and
 *   y+z the same token, both the best merge at once (never seen: HF and affix agree on the 511
 *   texts of tests/data/gemma3/tokenizer.json, 30,000 fuzzed mixes and every string of up to 9
 *   characters over {a, b, space}, {e, r, U+2581}, {s, t, i}, {ー, ン, space}).
 * BOS/EOS: tokenizer.ggml.bos_token_id / eos_token_id, add_bos_token (default: llama yes, gpt2 no),
 * add_eos_token (default no).
 * What this is not: the other GGUF vocabularies (bert, t5, rwkv, ...) nor other pre-tokenizers:
 * refused by name.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tok_internal.h"
#include "tok_loaders.h"
#include "utf8.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static int kv_int(const gguf_file *f, const char *key, int64_t def, int64_t *out, const char *label, afx_err *e) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    *out = def;
    if (kv && gguf_kv_int(kv, out)) return afx_fail(e, "%s: %s must be an integer (it is %s)", label, key, gguf_vtype_name(kv->type));
    return 0;
}

static int str_eq(gguf_str s, const char *lit) { return s.n == strlen(lit) && !memcmp(s.p, lit, s.n); }

/* Python's str.isspace() characters: what HF's `not t.strip()` tests */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Gemma's respelling (HF: `"▁" * len(t) if " " in t and not t.strip() else t`): the number of
 * characters of s if s holds a space and only whitespace, else 0. */
static size_t gemma_space_run(gguf_str s) {
    size_t i = 0, n = 0;
    int space = 0;
    while (i < s.n) {
        uint32_t c;
        int k = utf8_next(s.p + i, s.n - i, &c);
        if (k == 0 || !py_space(c)) return 0;
        space |= c == ' ';
        i += (size_t)k, n++;
    }
    return space ? n : 0;
}

int tokenizer_from_gguf(Tokenizer **out, const gguf_file *f, const char *label, afx_err *e) {
    *out = NULL;
    const gguf_kv *kmodel = gguf_find_kv(f, "tokenizer.ggml.model"), *ktok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const gguf_kv *kscore = gguf_find_kv(f, "tokenizer.ggml.scores"), *ktype = gguf_find_kv(f, "tokenizer.ggml.token_type");
    const gguf_kv *kmerge = gguf_find_kv(f, "tokenizer.ggml.merges"), *kpre = gguf_find_kv(f, "tokenizer.ggml.pre");
    gguf_str model, pre = {"default", 7};
    if (!kmodel) return afx_fail(e, "%s: no tokenizer in this GGUF file (tokenizer.ggml.model is missing)", label);
    if (gguf_kv_string(kmodel, &model)) return afx_fail(e, "%s: tokenizer.ggml.model must be a string", label);
    if (kpre && gguf_kv_string(kpre, &pre)) return afx_fail(e, "%s: tokenizer.ggml.pre must be a string", label);
    int spm = str_eq(model, "llama"), bpe = str_eq(model, "gpt2");
    if (!spm && !bpe)
        return afx_fail(e, "%s: tokenizer.ggml.model '%.*s' is not supported (only llama and gpt2)", label, (int)(model.n > 40 ? 40 : model.n), model.p);
    if (!ktok || ktok->type != GGUF_ARRAY || ktok->elem != GGUF_STRING || ktok->n == 0 || ktok->n > (1u << 30))
        return afx_fail(e, "%s: tokenizer.ggml.tokens must be a non-empty array of strings", label);
    int n = (int)ktok->n;
    if (ktype && (ktype->type != GGUF_ARRAY || ktype->n != ktok->n))
        return afx_fail(e, "%s: tokenizer.ggml.token_type must be an array of %d integers", label, n);
    if (spm && (!kscore || kscore->type != GGUF_ARRAY || kscore->n != ktok->n))
        return afx_fail(e, "%s: tokenizer.ggml.scores must be an array of %d numbers", label, n);
    if (bpe && (!kmerge || kmerge->type != GGUF_ARRAY || kmerge->elem != GGUF_STRING))
        return afx_fail(e, "%s: tokenizer.ggml.merges must be an array of strings", label);
    gguf_str arch = {"", 0};
    const gguf_kv *karch = gguf_find_kv(f, "general.architecture");
    if (karch && gguf_kv_string(karch, &arch)) return afx_fail(e, "%s: general.architecture must be a string", label);
    int gemma = spm && (str_eq(arch, "gemma") || str_eq(arch, "gemma2") || str_eq(arch, "gemma3"));
    int llama3 = 0;
    if (bpe) {
        if (str_eq(pre, "llama-bpe") || str_eq(pre, "llama3") || str_eq(pre, "llama-v3") || str_eq(pre, "smaug-bpe")) llama3 = 1;
        else if (!str_eq(pre, "gpt-2") && !str_eq(pre, "default"))
            return afx_fail(e, "%s: tokenizer.ggml.pre '%.*s' is not supported (gpt-2, default, llama-bpe)", label, (int)(pre.n > 40 ? 40 : pre.n), pre.p);
    }
    int64_t bos, eos, unk, add_bos, add_eos, add_space;
    if (kv_int(f, "tokenizer.ggml.bos_token_id", -1, &bos, label, e) || kv_int(f, "tokenizer.ggml.eos_token_id", -1, &eos, label, e) ||
        kv_int(f, "tokenizer.ggml.unknown_token_id", -1, &unk, label, e) ||
        kv_int(f, "tokenizer.ggml.add_bos_token", spm, &add_bos, label, e) ||
        kv_int(f, "tokenizer.ggml.add_eos_token", 0, &add_eos, label, e) ||
        kv_int(f, "tokenizer.ggml.add_space_prefix", 1, &add_space, label, e))
        return -1;
    if (gemma) add_space = 0;
    for (int k = 0; k < 3; k++) {
        int64_t v = k == 0 ? bos : k == 1 ? eos : unk;
        if (v < -1 || v >= n)
            return afx_fail(e, "%s: tokenizer.ggml.%s_token_id %lld out of range (%d tokens)", label, k == 0 ? "bos" : k == 1 ? "eos" : "unknown", (long long)v, n);
    }

    Tokenizer *t = tok_new(label, e);
    double *prio = NULL;
    char *buf = NULL;
    if (!t) return -1;
    tok_limit_ids(t, n);
    /* the tokens; unknown/control/user-defined ones are also added tokens (not Gemma's space runs) */
    for (int i = 0; i < n; i++) {
        gguf_str s = ktok->strs[i];
        int64_t ty = TT_NORMAL;
        if (ktype && gguf_kv_arr_int(ktype, (uint64_t)i, &ty)) {
            afx_fail(e, "%s: tokenizer.ggml.token_type[%d] is not an integer", label, i);
            goto fail;
        }
        size_t run = gemma ? gemma_space_run(s) : 0;
        if (run) { /* "▁" x run */
            char *b2 = realloc(buf, 3 * run);
            if (!b2) goto oom;
            buf = b2;
            for (size_t k = 0; k < run; k++) memcpy(buf + 3 * k, "\xE2\x96\x81", 3);
            s = (gguf_str){buf, 3 * run};
        }
        if (tok_vocab_find(t, s.p, s.n) >= 0 ? tok_add_unmapped(t, i, s.p, s.n, e) : tok_add_vocab(t, i, s.p, s.n, e)) goto fail;
        if ((ty == TT_UNKNOWN || ty == TT_CONTROL || ty == TT_USER) && s.n > 0 && !run &&
            tok_add_added(t, i, s.p, s.n, ty != TT_USER, 0, 0, e))
            goto fail;
        if (ty == TT_UNKNOWN && unk < 0) unk = i;
    }
    TokDec d = {.a = "", .b = ""};
    if (spm) {
        if (!(prio = malloc((size_t)n * sizeof *prio))) goto oom;
        for (int i = 0; i < n; i++) {
            double sc;
            if (gguf_kv_arr_float(kscore, (uint64_t)i, &sc)) {
                afx_fail(e, "%s: tokenizer.ggml.scores[%d] is not a number", label, i);
                goto fail;
            }
            prio[i] = gemma ? (double)i : -sc; /* Gemma: file order (see the top); else highest score first */
        }
        t->unk = (int)unk, t->byte_fallback = 1, t->fuse_unk = 1;
        if (tok_merges_from_vocab(t, prio, NULL, e)) goto fail;
        if ((add_space && tok_push_norm(t, TOK_NORM_PREPEND, "\xE2\x96\x81", 3, "", 0, e)) ||
            tok_push_norm(t, TOK_NORM_REPLACE, " ", 1, "\xE2\x96\x81", 3, e))
            goto fail;
        d = (TokDec){.kind = TOK_DEC_REPLACE, .a = "\xE2\x96\x81", .na = 3, .b = " ", .nb = 1};
        if (tok_push_dec(t, &d, e)) goto fail;
        d = (TokDec){.kind = TOK_DEC_BYTEFALLBACK, .a = "", .b = ""};
        if (tok_push_dec(t, &d, e)) goto fail;
        d.kind = TOK_DEC_FUSE;
        if (tok_push_dec(t, &d, e)) goto fail;
        d = (TokDec){.kind = TOK_DEC_STRIP, .a = "", .b = "", .ch = " ", .start = add_space ? 1 : 0};
        if (tok_push_dec(t, &d, e)) goto fail;
    } else {
        for (uint64_t m = 0; m < kmerge->n; m++) {
            gguf_str s = kmerge->strs[m];
            const char *sp = memchr(s.p, ' ', s.n);
            if (!sp || memchr(sp + 1, ' ', s.n - (size_t)(sp + 1 - s.p))) {
                afx_fail(e, "%s: tokenizer.ggml.merges[%llu] is not 'left right'", label, (unsigned long long)m);
                goto fail;
            }
            size_t na = (size_t)(sp - s.p), nb = s.n - na - 1;
            char *b2 = realloc(buf, na + nb + 1);
            if (!b2) goto oom;
            buf = b2;
            memcpy(buf, s.p, na), memcpy(buf + na, sp + 1, nb);
            int l = tok_vocab_find(t, s.p, na), r = tok_vocab_find(t, sp + 1, nb), lr = tok_vocab_find(t, buf, na + nb);
            if (l < 0 || r < 0 || lr < 0) {
                afx_fail(e, "%s: tokenizer.ggml.merges[%llu] '%.*s': a part or the result is not a token", label, (unsigned long long)m,
                         (int)(s.n > 60 ? 60 : s.n), s.p);
                goto fail;
            }
            if (tok_add_merge(t, l, r, lr, (double)m, e)) goto fail;
        }
        t->unk = (int)unk, t->ignore_merges = llama3;
        if (llama3 ? tok_push_split(t, TOK_LLAMA3_REGEX, strlen(TOK_LLAMA3_REGEX), 1, TOK_SPLIT_ISOLATED, 0, e) ||
                         tok_push_bytelevel(t, 0, 0, e)
                   : tok_push_bytelevel(t, 0, 1, e))
            goto fail;
        d.kind = TOK_DEC_BYTELEVEL;
        if (tok_push_dec(t, &d, e)) goto fail;
    }
    int b1 = (int)bos, e1 = (int)eos;
    if ((add_bos && bos < 0) || (add_eos && eos < 0)) {
        afx_fail(e, "%s: add_%s_token is set but there is no %s_token_id", label, add_bos && bos < 0 ? "bos" : "eos", add_bos && bos < 0 ? "bos" : "eos");
        goto fail;
    }
    if (tok_set_template(t, &b1, add_bos ? 1 : 0, &e1, add_eos ? 1 : 0, e)) goto fail;
    t->bos = (int)bos, t->eos = (int)eos;
    if (tok_finish(t, e)) goto fail;
    free(prio), free(buf);
    *out = t;
    return 0;
oom:
    afx_fail(e, "%s: out of memory", label);
fail:
    free(prio), free(buf);
    tokenizer_free(t);
    return -1;
}

int tok_load_gguf_path(Tokenizer **t, const char *path, afx_err *e) {
    gguf_file f;
    memset(&f, 0, sizeof f);
    if (gguf_open(&f, path, e)) return -1;
    int rc = tokenizer_from_gguf(t, &f, path, e);
    gguf_close(&f);
    return rc;
}
