# apt_install PACKAGE...: installs Debian packages quietly, for the scripts a newcomer
# runs first (examples/demo.sh, tests/run.sh): one line says what is being installed;
# apt's own output goes to a log file, whose last lines are shown only when it fails
# (then it returns non-zero). Sourced, not run.
apt_install() {
    local log
    log=$(mktemp /tmp/egress-router-apt.XXXXXX.log)
    echo "installing ${*} (apt-get, log: $log)"
    if {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    } >"$log" 2>&1; then
        rm -f "$log"
        return 0
    fi
    tail -n 20 "$log" >&2
    echo "installing ${*} failed: see $log" >&2
    return 1
}
