# apt_install [OPTION...] PACKAGE...: installs Debian packages quietly, for the scripts a
# newcomer runs first (examples/demo.sh, tests/run.sh): one line says what is being
# installed; apt's own output goes to a log file, whose last lines are shown only when it
# fails (then it returns non-zero). Options (`--no-install-recommends`) go to apt-get
# install. No service a package brings is started by the install (Debian's prometheus
# would start its server): while apt runs, a policy-rc.d that refuses every start is in
# place, unless the machine has one already (container images do), and it is removed
# after. APT_POLICY_RC_D names another place for it (the tests of this file).
# Sourced, not run.
apt_install() {
    local log policy=${APT_POLICY_RC_D:-/usr/sbin/policy-rc.d} made_policy='' rc=0 names=()
    local arg
    for arg in "$@"; do
        [[ $arg == -* ]] || names+=("$arg")
    done
    log=$(mktemp /tmp/egress-router-apt.XXXXXX.log)
    echo "installing ${names[*]} (apt-get, log: $log)"
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# tests/apt.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    } >"$log" 2>&1 || rc=$?
    [[ -n $made_policy ]] && rm -f "$policy"
    if ((rc == 0)); then
        rm -f "$log"
        return 0
    fi
    tail -n 20 "$log" >&2
    echo "installing ${names[*]} failed: see $log" >&2
    return 1
}
