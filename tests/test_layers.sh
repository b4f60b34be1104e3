#!/bin/sh
# test_layers.sh — the direction of dependence (design.md §1, README "Layout"), checked by compiling
# every source of a folder with only the include paths that folder may use:
#   ref/core       -Iref/core                                  (libc + libm; OpenMP pragmas only)
#   ref/adapters   -Iref/core -Iref/adapters
#   ref/tasks      -Iref/core -Iref/tasks
#   ref/io         -Iref/core -Iref/adapters -Iref/io
#   simd           its own headers and ref/core's               (the kernel table's backends)
# plus: no source reaches around the include path with a relative "../" include, and a planted
# core file that includes adapter.h must fail (so this check can fail).
# Run from the repository root (make test). Ends with "N passed, M failed".
CC=${CC:-cc}
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "  ok    $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL  $1"; }

layer() { # folder, include flags
    dir=$1
    shift
    n=0
    errs=""
    for f in "$dir"/*.c; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        out=$($CC -std=c11 -fsyntax-only "$@" "$f" 2>&1) || errs="$errs $f: $(printf '%s' "$out" | grep -m1 'error' )"
    done
    if [ -z "$errs" ]; then ok "$dir: $n files compile with only $*"; else bad "$dir:$errs"; fi
}
layer ref/core -Iref/core
layer ref/adapters -Iref/core -Iref/adapters
layer ref/tasks -Iref/core -Iref/tasks
layer ref/io -Iref/core -Iref/adapters -Iref/io
# simd/ compiles per ISA (and blas.c needs cblas.h): check its quoted includes by name instead
bad_inc=""
for f in simd/*.c simd/*.h; do
    for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        [ -f "simd/$h" ] || [ -f "ref/core/$h" ] || bad_inc="$bad_inc $f:$h"
    done
done
if [ -z "$bad_inc" ]; then ok "simd: includes only simd/ and ref/core headers"; else bad "simd includes from elsewhere:$bad_inc"; fi

rel=$(grep -rn '#include "\.\./' ref simd tools tests 2>/dev/null)
if [ -z "$rel" ]; then ok "no relative ../ includes"; else bad "relative includes: $rel"; fi

tmp=${TMPDIR:-/tmp}/affix-layers.$$.c
printf '#include "adapter.h"\nint x;\n' > "$tmp"
if $CC -std=c11 -fsyntax-only -Iref/core "$tmp" >/dev/null 2>&1; then
    bad "a planted core file including adapter.h compiled with -Iref/core: the check is blind"
else
    ok "a planted core file including adapter.h is refused with -Iref/core"
fi
rm -f "$tmp"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
