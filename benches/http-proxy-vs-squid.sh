#!/usr/bin/env bash
# Benchmark: the egress-router HTTP proxy vs squid (what the origin-egress-http-proxy
# image runs), same topology, same load generator (benches/loadgen.rs), one at a time.
#
#   sudo bash benches/http-proxy-vs-squid.sh        # about 3 minutes
#
# The client opens CONNECT tunnels through the proxy on 192.0.2.70:8080 to the loadgen
# server; what is measured and how is described in benches/lib.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
source benches/lib.sh
bench_setup benches/http-proxy-vs-squid.sh squid
SQUID=$(command -v squid)

proxy_port() { echo 8080; }
client_lg() { timeout 120 ip netns exec "$C" "$LG" "$@" --proxy 192.0.2.70:8080 --target "$SERVER"; }

start_squid() {
    local d=$WORK/squid
    mkdir -p "$d"
    chown proxy: "$d" 2>/dev/null || chmod 777 "$d"
    # as the origin-egress-http-proxy image: port 8080, no cache, no access log
    cat >"$d/squid.conf" <<CONF
http_port 8080
cache deny all
access_log none all
debug_options ALL,1
shutdown_lifetime 0
http_access allow all
visible_hostname egress-bench
pid_filename $d/squid.pid
cache_log $d/cache.log
netdb_filename none
pinger_enable off
max_filedescriptors 65536
CONF
    ip netns exec "$R" "$SQUID" -N -f "$d/squid.conf" >"$d/stdout" 2>&1 &
    PROXY_PID=$!
    wait_listening squid || { cat "$d/cache.log" "$d/stdout" >&2; exit 1; }
}

compare http-proxy start_squid "$("$SQUID" -v | head -1 | awk '{print $4}')" \
    EGRESS_HTTP_PROXY_DESTINATION='*'

table_header "HTTP proxy benchmark: medians of $REPS runs (RSS: one run); 2 cores shared by loadgen and proxy"
table_rows "bulk CONNECT 1 GiB" tunnel tunnels
table_footer
