# harness.sh — the counters and checks the shell tests share (sourced: . tests/harness.sh, from the
# repository root). Each test ends with `finish`: the line "N passed, M failed" and its exit code.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "  ok    $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL  $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; } # check "what" 'shell condition'
finish() { echo "$pass passed, $fail failed"; [ $fail -eq 0 ]; }
