# Shared parts of the proxy benchmarks (benches/http-proxy-vs-squid.sh,
# benches/dns-proxy-vs-haproxy.sh); sourced from the repository root, not run.
#
# A benchmark calls `bench_setup SCRIPT OTHER` (OTHER: the proxy egress-router is
# compared with, a Debian package and command of that name), defines `client_lg` (the
# loadgen client and how it reaches the proxy: CONNECT or --direct) and `proxy_port`,
# then uses topology_up, measure_direct, measure and the table_* functions. Results go
# to RES[name.metric].
#
# Client namespace -> proxy in the router namespace (192.0.2.70) -> macvlan0 ->
# gateway -> loadgen server 203.0.113.5:9000 (tests/topology.sh). Measured per proxy:
#   bulk      one connection carrying 1 GiB server -> client, Gbit/s. "direct" is the
#             same client to the same server over the same hops without a proxy: the
#             router forwards port 9000 in the kernel (init's redirect NAT)
#   rate      32 workers for 10 s: open a connection, 64 bytes back, close; per second,
#             p50/p99
#   cpu       utime+stime of the proxy's processes (/proc/PID/stat) per 1,000
#             connections and per GiB
#   rss       (RSS with 2,000 idle connections - RSS before) / 2,000, all proxy processes
# Bulk and rate are run 3 times and the median is shown. Only documentation addresses,
# inside namespaces the benchmark creates and removes.

export LC_ALL=C # numbers as awk and printf expect them
REPS=3
BULK_BYTES=$((1 << 30))
TUNNEL_SECONDS=10
CONCURRENCY=32
IDLE=2000
PORT=9000
SERVER=203.0.113.5:$PORT
declare -A RES

# Root check, OTHER installed, release builds of the binary and loadgen, namespace
# names, a work directory and the cleanup trap.
bench_setup() { # SCRIPT OTHER
    if [[ $EUID -ne 0 ]]; then
        echo "run as root: sudo bash $1" >&2
        exit 1
    fi
    OTHER=$2
    # process names of the proxies, for the /proc measurements
    PROXY_COMMS="$OTHER egress-router"
    command -v "$OTHER" >/dev/null || install_without_service "$OTHER"
    ROOT=$PWD
    echo "building the release binary and loadgen"
    build
    build --example loadgen
    BIN=$ROOT/target/release/egress-router
    LG=$ROOT/target/release/examples/loadgen

    P=pxb$$
    R=$P-router C=$P-client S=$P-server
    WORK=$(mktemp -d)
    PROXY_PID=
    trap cleanup EXIT

    hard=$(ulimit -Hn)
    ulimit -n $((hard < 65536 ? hard : 65536))
    echo "open files limit: $(ulimit -n)"
}

build() {
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        sudo -u "$SUDO_USER" -H bash -lc "cd '$ROOT' && cargo build --release -q $*"
    else
        cargo build --release -q "$@"
    fi
}

cleanup() {
    [[ -n $PROXY_PID ]] && kill -KILL "$PROXY_PID" 2>/dev/null || true
    # the proxies, loadgen and anything else left in our namespaces are ended by pid there
    bash "$ROOT/tests/topology.sh" down "$P"
    rm -rf "$WORK"
}

# apt-get install PACKAGE without starting the packaged service: only the benchmark
# runs it, in its namespace.
install_without_service() {
    echo "installing $1"
    local made_policy= rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null || rc=$?
    [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || { echo "apt-get install $1 failed" >&2; exit 1; }
}

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

# pids of the running proxy: every process in the router namespace named in PROXY_COMMS
proxy_pids() {
    local pid
    for pid in $(ip netns pids "$R"); do
        [[ " $PROXY_COMMS " == *" $(cat "/proc/$pid/comm" 2>/dev/null) "* ]] && echo "$pid"
    done
    return 0
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
wait_listening() { # NAME: the proxy must listen on proxy_port within 10 s
    for _ in $(seq 100); do
        ip netns exec "$R" ss -Hltn "sport = :$(proxy_port)" | grep -q LISTEN && return 0
        sleep 0.1
    done
    echo "$1 is not listening on $(proxy_port)" >&2
    return 1
}
stop_proxy() {
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=
    for _ in $(seq 50); do [[ -z $(proxy_pids) ]] && break; sleep 0.1; done
}

start_er() { # VAR=VALUE...: egress-router in the router namespace with that environment
    ip netns exec "$R" env -i PATH="$PATH" "$@" "$BIN" >"$WORK/er.out" 2>"$WORK/er.log" &
    PROXY_PID=$!
    wait_listening egress-router || { cat "$WORK/er.log" >&2; exit 1; }
}

# The direct baseline in its own topology, then in a fresh one with the router in MODE:
# OTHER (VERSION, started by the function START_OTHER) and egress-router (with the
# environment VAR=VALUE...), one after the other.
compare() { # MODE START_OTHER VERSION VAR=VALUE...
    topology_up init
    measure_direct
    bash tests/topology.sh down "$P"
    topology_up "$1"

    echo "$OTHER $3"
    "$2"
    measure "$OTHER"
    stop_proxy

    echo "egress-router"
    start_er "${@:4}"
    measure er
    stop_proxy
}

# The client straight to the server through the router's kernel forwarding (call in a
# topology set up with `topology_up init`): RES[direct.gbit|rate|p50|p99].
measure_direct() {
    echo "direct: the client through the router's kernel forwarding (no proxy)"
    local i
    for i in $(seq "$REPS"); do
        timeout 120 ip netns exec "$C" "$LG" bulk --direct --proxy "192.0.2.70:$PORT" --bytes "$BULK_BYTES" >"$WORK/direct.bulk$i"
        kv "$WORK/direct.bulk$i" gbit_per_s >>"$WORK/direct.gbit"
    done
    timeout 120 ip netns exec "$C" "$LG" tunnels --direct --proxy "192.0.2.70:$PORT" \
        --concurrency "$CONCURRENCY" --duration "$TUNNEL_SECONDS" >"$WORK/direct.tun"
    RES[direct.gbit]=$(median <"$WORK/direct.gbit")
    for m in rate_per_s:rate p50_ms:p50 p99_ms:p99; do RES[direct.${m#*:}]=$(kv "$WORK/direct.tun" "${m%:*}"); done
}

measure() { # NAME: the proxy running now, reached with client_lg
    local name=$1 out=$WORK/$1 i c0 c1 base
    # warm-up, and proof that it works
    client_lg tunnels --concurrency 4 --duration 1 >"$out.warm"

    # idle connections: RSS
    base=$(rss_kib)
    client_lg idle --count "$IDLE" --hold 3 >"$out.idle" 2>&1 &
    local idle_pid=$!
    for _ in $(seq 300); do grep -q idle_open= "$out.idle" && break; sleep 0.1; done
    sleep 0.5
    RES[$name.rss]=$(awk -v a="$(rss_kib)" -v b="$base" -v n="$IDLE" 'BEGIN {printf "%.1f", (a - b) / n}')
    RES[$name.rss_base]=$(awk -v b="$base" 'BEGIN {printf "%.1f", b / 1024}')
    wait "$idle_pid" || { echo "$name: idle connections failed:" >&2; cat "$out.idle" >&2; exit 1; }
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

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}'; }
TABLE_FORMAT='  %-38s %-7s %10s %14s %10s %12s\n'
table_header() { # TITLE
    echo
    echo "$1"
    # shellcheck disable=SC2059
    printf "$TABLE_FORMAT" metric unit direct egress-router "$OTHER" "$OTHER/er"
}
table_row() { # LABEL UNIT KEY [DIRECT]: egress-router's and OTHER's RES values
    # shellcheck disable=SC2059
    printf "$TABLE_FORMAT" "$1" "$2" "${4:--}" "${RES[er.$3]:--}" "${RES[$OTHER.$3]:--}" \
        "$(ratio "${RES[$OTHER.$3]:-0}" "${RES[er.$3]:-0}")"
}
table_rows() { # BULK_LABEL NOUN NOUNS: the rows of every benchmark
    table_row "$1" Gbit/s gbit "${RES[direct.gbit]}"
    table_row "$3, $CONCURRENCY concurrent" "1/s" rate "${RES[direct.rate]}"
    table_row "$2 latency p50" ms p50 "${RES[direct.p50]}"
    table_row "$2 latency p99" ms p99 "${RES[direct.p99]}"
    table_row "proxy CPU per 1,000 $3" s cpu_k
    table_row "proxy CPU per GiB" s cpu_gib
    table_row "RSS per idle $2 ($IDLE open)" KiB rss
    table_row "RSS idle baseline" MiB rss_base
    table_row "failed $3 (all runs)" count errors
}
table_footer() {
    echo "  $OTHER/er: $OTHER's value / egress-router's (throughput: below 1 is slower; CPU,"
    echo "  latency and RSS: above 1 is more). direct: client -> router kernel NAT -> server, no proxy."
    echo "  bulk, egress-router / direct: $(ratio "${RES[er.gbit]}" "${RES[direct.gbit]}")"
}
