#!/usr/bin/env bash
# The proxy benchmarks, one command: egress-router against the proxies it replaces, with
# the same load generator (benches/loadgen.rs) and the direct path (no proxy) alongside.
#
#   sudo bash benches/compare.sh [--pinned] [--only http|dns|names] [--reps N]   # ~20 min
#
#   http  the HTTP proxy (CONNECT tunnels on 192.0.2.70:8080) vs squid, configured as
#         the origin-egress-http-proxy image (port 8080, no cache, no access log)
#   dns   the DNS proxy's TCP forwarder (192.0.2.70:9000 -> 203.0.113.5:9000, an
#         address target) vs haproxy, configured as the origin-egress-dns-proxy image
#         (mode tcp, its timeouts, maxconn 4000); plus one egress-router run with a host
#         name target (dnsmasq, if installed, answers it)
#   names the same name target (bench.example.org, dnsmasq, TTL 1 s) through the kernel:
#         direct (routed, no DNAT), hand-written static DNAT, egress-router's redirect
#         by name (init + the redirect container), the same while the name moves every
#         second; and through the DNS proxy and haproxy by name (benches/names.sh)
#   --pinned  the loadgen client and server on CPU 0, the proxy on CPU 1 (taskset);
#             default: everything shares all CPUs
#   --reps N  runs per figure (at least 3, the default); the runs of direct, the peer
#             and egress-router are interleaved, so slow drifts hit all three alike
#
# squid and haproxy are installed with apt-get if missing, their services not started.
# Each figure is the median of the runs, with their min-max. What is measured and how:
# benches/lib.sh. The tables go to stdout, progress to stderr. After each table, the
# CPU use during the rate test says whether the proxy was the bottleneck; where it was
# not (it used < 0.9 cores while the client's CPUs were saturated), the rate ratio is
# not reported: the figure measures the client.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit "${1:-2}"
}
PINNED='' ONLY='' REPS=3
while (($#)); do
    case $1 in
    --pinned) PINNED=1 ;;
    --only)
        ONLY=${2:-}
        [[ $ONLY == http || $ONLY == dns || $ONLY == names ]] || usage
        shift
        ;;
    --reps)
        REPS=${2:-}
        if ! [[ $REPS =~ ^[0-9]+$ ]] || ((REPS < 3 || REPS > 15)); then usage; fi
        shift
        ;;
    -h | --help) usage 0 ;;
    *) usage ;;
    esac
    shift
done

cd "$(dirname "$0")/.."
source benches/lib.sh
source benches/names.sh
PEERS=()
[[ -z $ONLY || $ONLY == http ]] && PEERS+=(squid)
[[ $ONLY != http ]] && PEERS+=(haproxy)
[[ -z $ONLY || $ONLY == names ]] && PEERS+=(dnsmasq)
bench_setup benches/compare.sh "${PEERS[@]}"
wait_quiet 60

MODE_LINE="unpinned: loadgen client, loadgen server and the proxy share all $NCPU CPUs"
[[ -n $PINNED ]] && MODE_LINE="pinned: loadgen client and server on CPU 0, the proxy on CPU 1 (taskset)"
HEADER="$(machine_line)
egress-router $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'); $MODE_LINE
each figure: median (min-max) of $REPS runs; other work on the machine at start: $QUIET_AT_START cores"

[[ $ONLY != names ]] && topology_up "$PD" init

# The proxy topology in MODE, then REPS runs of direct, the peer (started by
# start_PEER, reached by DIAL) and egress-router (start_er PORT VAR=VALUE...),
# interleaved; the topology stays up for the caller.
interleaved_runs() { # MODE DIRECT PEER DIAL ER PORT VAR=VALUE...
    local mode=$1 direct=$2 peer=$3 dial=$4 er=$5 i
    shift 5
    topology_up "$PP" "$mode"
    for i in $(seq "$REPS"); do
        log "  run $i of $REPS: direct, $peer, egress-router"
        run_direct "$direct"
        run_proxy "$peer" "$dial" "start_$peer"
        run_proxy "$er" "$dial" start_er "$@"
    done
}

if [[ -z $ONLY || $ONLY == http ]]; then
    SQUID_VERSION=$(squid -v | head -1 | awk '{print $4}')
    log "HTTP proxy: squid $SQUID_VERSION vs egress-router"
    interleaved_runs http-proxy direct-http squid connect er-http 8080 EGRESS_HTTP_PROXY_DESTINATION='*'
    SNI_LINE=
    if DNSMASQ=$(command -v dnsmasq); then
        # Tunnels a name rule allowed are judged by their first bytes (the TLS server name
        # check): the rate test with the check on and off, to the same name, interleaved.
        log "  egress-router: tunnels judged by their first bytes, and with the check off"
        ip netns exec "$PP-server" "$DNSMASQ" --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
            --pid-file= --user=root --port=53 --listen-address=203.0.113.53 --bind-interfaces \
            --local=/example.org/ --local-ttl=3600 --host-record=bench.example.org,"${SERVER%:*}" \
            >"$WORK/dnsmasq.log" 2>&1 &
        disown # ended by `topology.sh down`; a long TTL: the proxy's cache answers
        sleep 0.5
        ADDRESS_TARGET=$SERVER
        for i in $(seq "$REPS"); do
            for check in off enforce; do
                T=$PP DIAL=connect SERVER=bench.example.org:${ADDRESS_TARGET#*:}
                settle
                start_er 8080 EGRESS_HTTP_PROXY_DESTINATION=bench.example.org EGRESS_HTTP_PROXY_TLS_SNI=$check
                client_lg tunnels --concurrency 4 --duration 1 >/dev/null 2>&1 || true
                rate_run "er-sni-$check"
                stop_proxy
            done
            log "  run $i of $REPS: check on and off"
        done
        SERVER=$ADDRESS_TARGET
        ratio() { awk -v a="$(med "er-sni-enforce" "$1")" -v b="$(med "er-sni-off" "$1")" 'BEGIN {printf "%.2fx", a / b}'; }
        SNI_LINE="  egress-router, CONNECT bench.example.org (a name rule), TLS server name check on vs off, $REPS runs each: $(med er-sni-enforce rate) vs $(med er-sni-off rate) tunnels/s ($(ratio rate)), $(med er-sni-enforce cpu_k) vs $(med er-sni-off cpu_k) ms CPU per 1,000 ($(ratio cpu_k)), $(med er-sni-enforce errors) failed"
    fi
    bash tests/topology.sh down "$PP"
    HTTP_REPORT=$(report "HTTP proxy (CONNECT tunnels) vs squid $SQUID_VERSION" direct-http squid squid er-http)
fi

if [[ -z $ONLY || $ONLY == dns ]]; then
    HAPROXY_VERSION=$(haproxy -v | head -1 | awk '{print $3}')
    log "DNS proxy (TCP forwarder): haproxy $HAPROXY_VERSION vs egress-router"
    interleaved_runs dns-proxy direct-dns haproxy direct er-dns "$PORT" EGRESS_DNS_PROXY_DESTINATION="$PORT ${SERVER%:*}"
    NAME_LINE=
    if DNSMASQ=$(command -v dnsmasq); then
        log "  egress-router with a host name target"
        ip netns exec "$PP-server" "$DNSMASQ" --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
            --pid-file= --user=root --port=53 --listen-address=203.0.113.53 --bind-interfaces \
            --local=/example.org/ --host-record=bench.example.org,"${SERVER%:*}" >"$WORK/dnsmasq.log" 2>&1 &
        disown # ended by `topology.sh down`
        sleep 0.5
        T=$PP DIAL=direct
        start_er "$PORT" EGRESS_DNS_PROXY_DESTINATION="$PORT bench.example.org"
        client_lg tunnels --concurrency 4 --duration 1 >/dev/null 2>&1 || true
        rate_run er-name
        stop_proxy
        NAME_LINE="  egress-router with a host name target (dnsmasq, re-resolved in the background), one run: $(med er-name rate) connections/s, p50 $(med er-name p50) ms, $(med er-name proxy_cores) cores, $(med er-name errors) failed"
    fi
    bash tests/topology.sh down "$PP"
    DNS_REPORT=$(report "DNS proxy (TCP forwarder) vs haproxy $HAPROXY_VERSION" direct-dns haproxy haproxy er-dns)
fi

if [[ -z $ONLY || $ONLY == names ]]; then
    log "Name targets: direct, static DNAT, redirect by name (still and moving), DNS proxy, haproxy $(haproxy -v | head -1 | awk '{print $3}')"
    names_runs
    NAMES_REPORT=$(names_report)
fi

echo "$HEADER"
[[ -n ${HTTP_REPORT:-} ]] && echo "$HTTP_REPORT"
[[ -n ${SNI_LINE:-} ]] && echo "$SNI_LINE"
if [[ -n ${DNS_REPORT:-} ]]; then
    echo "$DNS_REPORT"
    [[ -n $NAME_LINE ]] && echo "$NAME_LINE"
fi
[[ -n ${NAMES_REPORT:-} ]] && echo "$NAMES_REPORT"
echo
echo "  er/peer: egress-router's median / the peer's (throughput: above 1 is faster; CPU, latency,"
echo "  RSS: below 1 is less). direct: client -> router kernel NAT -> server, no proxy (in the names"
echo "  table: the client dials the server's address, the router forwards without DNAT)."
echo "  cores: CPU time / wall time during the rate test; proxy and server from /proc/PID/stat,"
echo "  client from loadgen's getrusage, machine (busy: not idle) from /proc/stat. steal: time the"
echo "  hypervisor did not run a CPU that wanted to run (counted as busy). other: busy time outside"
echo "  the three and steal (network softirq work outside their time slices, other programs)."
echo "  startup: from the start command to the first exchange served; direct: the time to start"
echo "  \`true\` the same way (ip netns exec, env), which the proxies' figures include."
