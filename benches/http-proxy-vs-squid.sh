#!/usr/bin/env bash
# Benchmark: the egress-router HTTP proxy vs squid (what the origin-egress-http-proxy
# image runs), same topology, same load generator (benches/loadgen.rs), one at a time.
#
#   sudo bash benches/http-proxy-vs-squid.sh        # about 3 minutes
#
# Client namespace -> proxy in the router namespace (192.0.2.70:8080) -> macvlan0 ->
# gateway -> loadgen server 203.0.113.5:9000 (tests/topology.sh). Measured per proxy:
#   bulk      one CONNECT tunnel carrying 1 GiB server -> client, Gbit/s. "direct" is
#             the same client to the same server over the same hops without a proxy:
#             the router forwards port 9000 in the kernel (init's redirect NAT)
#   tunnels   32 workers for 10 s: CONNECT, 64 bytes back, close; tunnels/s, p50/p99
#   cpu       utime+stime of the proxy's processes (/proc/PID/stat) per 1,000 tunnels
#             and per GiB
#   rss       (RSS with 2,000 idle tunnels - RSS before) / 2,000, all proxy processes
# Bulk and tunnels are run 3 times and the median is shown. Only documentation
# addresses, inside namespaces this script creates and removes.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=3
BULK_BYTES=$((1 << 30))
TUNNEL_SECONDS=10
CONCURRENCY=32
IDLE=2000
PORT=9000
SERVER=203.0.113.5:$PORT

if [[ $EUID -ne 0 ]]; then
    echo "run as root: sudo bash benches/http-proxy-vs-squid.sh" >&2
    exit 1
fi

if ! command -v squid >/dev/null; then
    echo "installing squid"
    # install without starting the packaged service: only the benchmark runs squid
    made_policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq squid >/dev/null || rc=$?
    [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
    ((${rc:-0} == 0)) || { echo "apt-get install squid failed" >&2; exit 1; }
fi
SQUID=$(command -v squid)

echo "building the release binary and loadgen"
build() {
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        sudo -u "$SUDO_USER" -H bash -lc "cd '$ROOT' && cargo build --release -q $*"
    else
        cargo build --release -q "$@"
    fi
}
build
build --example loadgen
BIN=$ROOT/target/release/egress-router
LG=$ROOT/target/release/examples/loadgen

P=pxb$$
R=$P-router C=$P-client S=$P-server
WORK=$(mktemp -d)
PROXY_PID=
cleanup() {
    [[ -n $PROXY_PID ]] && kill -KILL "$PROXY_PID" 2>/dev/null || true
    # squid, loadgen and anything else left in our namespaces are ended by pid there
    bash "$ROOT/tests/topology.sh" down "$P"
    rm -rf "$WORK"
}
trap cleanup EXIT

hard=$(ulimit -Hn)
ulimit -n $((hard < 65536 ? hard : 65536))
echo "open files limit: $(ulimit -n)"

# A fresh topology with the router in MODE (and, for init, one redirect: port 9000 ->
# the server) and the loadgen server running. The direct baseline gets its own
# topology, so its NAT state cannot disturb the proxies' measurements.
topology_up() {
    bash tests/topology.sh up "$P"
    # resolvers of the router namespace: a documentation address, never the host's
    mkdir -p "/etc/netns/$R"
    echo "nameserver 203.0.113.53" >"/etc/netns/$R/resolv.conf"
    for ns in "$C" "$R" "$S"; do
        # tens of thousands of short connections in a few seconds
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
    done
    EGRESS_SOURCE=198.51.100.99 EGRESS_GATEWAY=198.51.100.1 EGRESS_ROUTER_MODE=$1 \
        EGRESS_DESTINATION="$PORT tcp ${SERVER%:*}" \
        ip netns exec "$R" "$BIN" 2>"$WORK/init.log" || { cat "$WORK/init.log" >&2; exit 1; }
    ip netns exec "$S" "$LG" server --listen "0.0.0.0:$PORT" --max-seconds 900 >"$WORK/server.out" 2>&1 &
    disown # ended by `topology.sh down` (it kills what runs in our namespaces), quietly
    for _ in $(seq 50); do grep -q listening= "$WORK/server.out" && break; sleep 0.1; done
    grep -q listening= "$WORK/server.out" || { echo "loadgen server did not start" >&2; exit 1; }
}

CLK_TCK=$(getconf CLK_TCK)

# pids of the running proxy: every squid/egress-router process in the router namespace
proxy_pids() {
    local pid
    for pid in $(ip netns pids "$R"); do
        case $(cat "/proc/$pid/comm" 2>/dev/null) in squid | egress-router) echo "$pid" ;; esac
    done
}
cpu_seconds() { # utime+stime of the proxy processes
    local total=0 pid f
    for pid in $(proxy_pids); do
        f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + $(awk '{print $12 + $13}' <<<"$f")))
    done
    awk -v t="$total" -v h="$CLK_TCK" 'BEGIN {printf "%.3f", t / h}'
}
rss_kib() {
    local total=0 pid kb
    for pid in $(proxy_pids); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}
kv() { # value of KEY= in the last line of FILE that has it
    grep -o "\b$2=[^ ]*" "$1" | tail -1 | cut -d= -f2
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
wait_listening() {
    for _ in $(seq 100); do
        ip netns exec "$R" ss -Hltn 'sport = :8080' | grep -q LISTEN && return 0
        sleep 0.1
    done
    echo "$1 is not listening on 8080" >&2
    return 1
}

start_squid() {
    local d=$WORK/squid
    mkdir -p "$d"
    chown proxy: "$d" 2>/dev/null || chmod 777 "$d"
    # as the origin-egress-http-proxy image: port 8080, no cache, no access log
    cat >"$d/squid.conf" <<EOF
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
EOF
    ip netns exec "$R" "$SQUID" -N -f "$d/squid.conf" >"$d/stdout" 2>&1 &
    PROXY_PID=$!
    wait_listening squid || { cat "$d/cache.log" "$d/stdout" >&2; exit 1; }
}
start_er() {
    ip netns exec "$R" env -i PATH="$PATH" EGRESS_HTTP_PROXY_DESTINATION='*' "$BIN" \
        >"$WORK/er.out" 2>"$WORK/er.log" &
    PROXY_PID=$!
    wait_listening egress-router || { cat "$WORK/er.log" >&2; exit 1; }
}
stop_proxy() {
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=
    for _ in $(seq 50); do [[ -z $(proxy_pids) ]] && break; sleep 0.1; done
}

declare -A RES
client_lg() { timeout 120 ip netns exec "$C" "$LG" "$@" --proxy 192.0.2.70:8080 --target "$SERVER"; }

measure() { # NAME: the proxy running now
    local name=$1 out=$WORK/$1 i c0 c1 base
    # warm-up, and proof that it works
    client_lg tunnels --concurrency 4 --duration 1 >"$out.warm"

    # idle tunnels: RSS
    base=$(rss_kib)
    timeout 120 ip netns exec "$C" "$LG" idle --proxy 192.0.2.70:8080 --target "$SERVER" \
        --count "$IDLE" --hold 3 >"$out.idle" 2>&1 &
    local idle_pid=$!
    for _ in $(seq 300); do grep -q idle_open= "$out.idle" && break; sleep 0.1; done
    sleep 0.5
    RES[$name.rss]=$(awk -v a="$(rss_kib)" -v b="$base" -v n="$IDLE" 'BEGIN {printf "%.1f", (a - b) / n}')
    RES[$name.rss_base]=$(awk -v b="$base" 'BEGIN {printf "%.1f", b / 1024}')
    wait "$idle_pid" || { echo "$name: idle tunnels failed:" >&2; cat "$out.idle" >&2; exit 1; }
    sleep 0.5

    for i in $(seq "$REPS"); do
        c0=$(cpu_seconds)
        client_lg bulk --bytes "$BULK_BYTES" >"$out.bulk$i"
        c1=$(cpu_seconds)
        awk -v a="$c0" -v b="$c1" -v n="$BULK_BYTES" 'BEGIN {printf "%.3f\n", (b - a) / (n / 2^30)}' >>"$out.cpu_gib"
        kv "$out.bulk$i" gbit_per_s >>"$out.gbit"
    done
    for i in $(seq "$REPS"); do
        c0=$(cpu_seconds)
        client_lg tunnels --concurrency "$CONCURRENCY" --duration "$TUNNEL_SECONDS" >"$out.tun$i"
        c1=$(cpu_seconds)
        awk -v a="$c0" -v b="$c1" -v n="$(kv "$out.tun$i" tunnels)" \
            'BEGIN {printf "%.3f\n", (b - a) / n * 1000}' >>"$out.cpu_k"
        kv "$out.tun$i" rate_per_s >>"$out.rate"
        kv "$out.tun$i" p50_ms >>"$out.p50"
        kv "$out.tun$i" p99_ms >>"$out.p99"
        kv "$out.tun$i" errors >>"$out.errors"
        printf '.'
    done
    echo
    for m in gbit cpu_gib rate p50 p99 cpu_k; do RES[$name.$m]=$(median <"$out.$m"); done
    RES[$name.errors]=$(awk '{s += $1} END {print s}' "$out.errors")
}

topology_up init
echo "direct: the client through the router's kernel forwarding (no proxy)"
for i in $(seq "$REPS"); do
    timeout 120 ip netns exec "$C" "$LG" bulk --direct --proxy "192.0.2.70:$PORT" --bytes "$BULK_BYTES" >"$WORK/direct.bulk$i"
    kv "$WORK/direct.bulk$i" gbit_per_s >>"$WORK/direct.gbit"
done
timeout 120 ip netns exec "$C" "$LG" tunnels --direct --proxy "192.0.2.70:$PORT" \
    --concurrency "$CONCURRENCY" --duration "$TUNNEL_SECONDS" >"$WORK/direct.tun"
RES[direct.gbit]=$(median <"$WORK/direct.gbit")
for m in rate_per_s:rate p50_ms:p50 p99_ms:p99; do RES[direct.${m#*:}]=$(kv "$WORK/direct.tun" "${m%:*}"); done

bash tests/topology.sh down "$P"
topology_up http-proxy

echo "squid $("$SQUID" -v | head -1 | awk '{print $4}')"
start_squid
measure squid
stop_proxy

echo "egress-router"
start_er
measure er
stop_proxy

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}'; }
row() { # label unit key [direct]
    printf '  %-34s %-7s %10s %14s %10s %9s\n' "$1" "$2" "${4:--}" "${RES[er.$3]}" "${RES[squid.$3]}" \
        "$(ratio "${RES[squid.$3]}" "${RES[er.$3]}")"
}
echo
echo "HTTP proxy benchmark: medians of $REPS runs (RSS: one run); 2 cores shared by loadgen and proxy"
printf '  %-34s %-7s %10s %14s %10s %9s\n' metric unit direct egress-router squid squid/er
row "bulk CONNECT 1 GiB" Gbit/s gbit "${RES[direct.gbit]}"
row "tunnels, $CONCURRENCY concurrent" "1/s" rate "${RES[direct.rate]}"
row "tunnel latency p50" ms p50 "${RES[direct.p50]}"
row "tunnel latency p99" ms p99 "${RES[direct.p99]}"
row "proxy CPU per 1,000 tunnels" s cpu_k
row "proxy CPU per GiB" s cpu_gib
row "RSS per idle tunnel ($IDLE open)" KiB rss
row "RSS idle baseline" MiB rss_base
row "failed tunnels (all runs)" count errors
echo "  squid/er: squid's value / egress-router's (throughput: below 1 is slower; CPU, latency"
echo "  and RSS: above 1 is more). direct: client -> router kernel NAT -> server, no proxy."
echo "  bulk, egress-router / direct: $(ratio "${RES[er.gbit]}" "${RES[direct.gbit]}")"
