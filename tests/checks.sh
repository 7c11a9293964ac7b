# Assertions shared by the shell tests (tests/container.sh, tests/cni_podman.sh): each
# check counts as passed or failed; the test ends with `NAME: N passed, M failed`.
passed=0 failed=0

say() { printf '\n== %s\n' "$*"; }
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAILED: $*"; }
check() { # check DESCRIPTION COMMAND...: one assertion
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
