#!/usr/bin/env bash
# Benchmark: the egress-router DNS proxy (a TCP forwarder) vs haproxy (what the
# origin-egress-dns-proxy image runs), same topology, same load generator
# (benches/loadgen.rs), one at a time.
#
#   sudo bash benches/dns-proxy-vs-haproxy.sh        # about 3 minutes
#
# Both forward 192.0.2.70:9000 to the loadgen server 203.0.113.5:9000 (an address
# target, so DNS is not in the path); the client connects to the forwarder as if it
# were the server (loadgen --direct). What is measured and how: benches/lib.sh. One
# extra run has egress-router forward to a host name (dnsmasq, TTL 0: re-resolved
# every 2 s) instead.
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh
bench_setup benches/dns-proxy-vs-haproxy.sh haproxy
HAPROXY=$(command -v haproxy)
DNSMASQ=$(command -v dnsmasq || true)

proxy_port() { echo "$PORT"; }
client_lg() { timeout 120 ip netns exec "$C" "$LG" "$@" --direct --proxy "192.0.2.70:$PORT"; }

start_haproxy() {
    local d=$WORK/haproxy
    mkdir -p "$d"
    # as the origin-egress-dns-proxy image: TCP mode, its timeouts and connection limit,
    # one frontend per port and a backend with the target
    cat >"$d/haproxy.cfg" <<CONF
global
    maxconn 4000
    pidfile $d/haproxy.pid

defaults
    mode tcp
    option dontlognull
    timeout connect 10s
    timeout client 1m
    timeout server 1m

frontend fe$PORT
    bind :$PORT
    default_backend be$PORT

backend be$PORT
    server dest1 $SERVER check
CONF
    ip netns exec "$R" "$HAPROXY" -db -f "$d/haproxy.cfg" >"$d/log" 2>&1 &
    PROXY_PID=$!
    wait_listening haproxy || { cat "$d/log" >&2; exit 1; }
}

compare dns-proxy start_haproxy "$("$HAPROXY" -v | head -1 | awk '{print $3}')" \
    EGRESS_DNS_PROXY_DESTINATION="$PORT ${SERVER%:*}"

if [[ -n $DNSMASQ ]]; then
    echo "egress-router, host name target"
    ip netns exec "$S" "$DNSMASQ" --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
        --pid-file= --user=root --port=53 --listen-address=203.0.113.53 --bind-interfaces \
        --local=/example.org/ --host-record=bench.example.org,"${SERVER%:*}" >"$WORK/dnsmasq.log" 2>&1 &
    disown # ended by `topology.sh down`
    sleep 0.5
    start_er EGRESS_DNS_PROXY_DESTINATION="$PORT bench.example.org"
    client_lg tunnels --concurrency "$CONCURRENCY" --duration "$TUNNEL_SECONDS" >"$WORK/name.tun"
    stop_proxy
    for m in rate_per_s:rate p50_ms:p50 p99_ms:p99 errors:errors; do
        RES[name.${m#*:}]=$(kv "$WORK/name.tun" "${m%:*}")
    done
fi

table_header "DNS proxy (TCP forwarder) benchmark: medians of $REPS runs (RSS: one run); 2 cores shared by loadgen and proxy"
table_rows "bulk 1 GiB" connection connections
if [[ -n ${RES[name.rate]:-} ]]; then
    # shellcheck disable=SC2059
    printf "$TABLE_FORMAT" "er, host name target: connections" "1/s" - "${RES[name.rate]}" - -
    printf "$TABLE_FORMAT" "  latency p50 / p99" ms - "${RES[name.p50]} / ${RES[name.p99]}" - -
    printf "$TABLE_FORMAT" "  failed connections (one run)" count - "${RES[name.errors]}" - -
fi
table_footer
echo "  haproxy $("$HAPROXY" -v | head -1 | awk '{print $3}') runs with its default threads ($(nproc) cores); egress-router on one."
