# shellcheck shell=bash
# Shared parts of the proxy benchmarks (benches/compare.sh, benches/profile.sh);
# sourced from the repository root, not run.
#
# Client namespace -> proxy in the router namespace (192.0.2.70) -> macvlan0 ->
# gateway -> loadgen server 203.0.113.5:9000 (tests/topology.sh). "direct" is the same
# client and server over the same hops without a proxy: the router forwards port 9000
# in the kernel (init's redirect NAT), in a topology of its own (PD) that lives next to
# the proxies' (PP), so its runs can be interleaved with theirs. Measured per subject
# (direct, the peer proxy, egress-router), every run:
#   rate      CONCURRENCY workers for RATE_SECONDS: connect, `SEND 64`, read 64 bytes and
#             the end of stream, close; connections/s, p50/p99
#   bulk      one connection carrying 1 GiB server -> client (down) and one client ->
#             server (up), MB/s
#   cpu       utime+stime of the proxy's processes (/proc/PID/stat), per 1,000
#             connections (rate; and utime alone: the proxy's own code, not the
#             kernel's) and per GiB (bulk, both directions)
#   rss       (VmRSS with IDLE idle connections - VmRSS before) / IDLE, all proxy
#             processes (/proc/PID/status)
#   startup   from just before the proxy is started (the client already retrying every
#             0.2 ms) to the first exchange it served, ms; direct: the time to start
#             `true` the same way (ip netns exec, env), which the proxies' figures include
#   cores     during the rate test: the proxy's and loadgen server's CPU (/proc/PID/stat),
#             the client's (getrusage, printed by loadgen) and the machine's (/proc/stat),
#             each / wall time: whether the proxy or the client was the bottleneck
# Only documentation addresses, inside namespaces the benchmark creates and removes.

export LC_ALL=C # numbers as awk and printf expect them
REPS=${REPS:-3}
BULK_BYTES=$((1 << 30))
RATE_SECONDS=10
CONCURRENCY=32
IDLE=3000
PORT=9000
SERVER=203.0.113.5:$PORT
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
PINNED=${PINNED:-}
PROXY_PID=''
T='' DIAL='' # the topology prefix and how the client reaches the subject measured now

# Root check, PACKAGES installed (Debian packages named as their command), release
# builds of the binary and loadgen, topology prefixes, a work directory, the cleanup
# trap, the descriptor limit and the CPU pinning.
bench_setup() { # SCRIPT PACKAGE...
    if [[ $EUID -ne 0 ]]; then
        echo "run as root: sudo bash $1" >&2
        exit 1
    fi
    local pkg
    for pkg in "${@:2}"; do
        command -v "$pkg" >/dev/null || install_without_service "$pkg"
    done
    ROOT=$PWD
    log "building the release binary and loadgen"
    build
    build --example loadgen
    BIN=$ROOT/target/release/egress-router
    LG=$ROOT/target/release/examples/loadgen

    PD=pxd$$ PP=pxp$$ PR=pxr$$ PS=pxs$$ PN=pxn$$ # the last three: the names comparison
    WORK=$(mktemp -d)
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    local hard
    hard=$(ulimit -Hn)
    ulimit -n $((hard < 65536 ? hard : 65536))
    log "open files limit: $(ulimit -n)"

    # client and loadgen server on CPU 0, the proxy on CPU 1; unpinned: all CPUs
    CL_PIN=() PX_PIN=()
    if [[ -n $PINNED ]]; then
        ((NCPU >= 2)) || { echo "--pinned needs 2 CPUs, this machine has $NCPU" >&2; exit 1; }
        CL_PIN=(taskset -c 0) PX_PIN=(taskset -c 1)
    fi
}

log() { echo "$*" >&2; }

build() { # ARGS of cargo build --release; BUILD_ENV: VAR=VALUE words for cargo
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        sudo -u "$SUDO_USER" -H bash -lc "cd '$ROOT' && env ${BUILD_ENV:-} cargo build --release -q $*" >&2
    else
        # shellcheck disable=SC2086 # words
        env ${BUILD_ENV:-} cargo build --release -q "$@" >&2
    fi
}

cleanup() {
    if [[ -n $PROXY_PID ]]; then kill -KILL "$PROXY_PID" 2>/dev/null || true; fi
    # the proxies, loadgen and anything else left in our namespaces are ended by pid there
    local p
    for p in "$PD" "$PP" "$PR" "$PS" "$PN"; do bash "$ROOT/tests/topology.sh" down "$p"; done
    rm -rf "$WORK"
}

# apt-get install PACKAGE without starting the packaged service: only the benchmark
# runs it, in its namespace.
install_without_service() {
    log "installing $1"
    local made_policy='' rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null || rc=$?
    [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || { echo "apt-get install $1 failed" >&2; exit 1; }
}

# Busy cores of the machine over one second, from /proc/stat.
busy_now() {
    local s0 s1
    s0=$(stat_snap)
    sleep 1
    s1=$(stat_snap)
    awk -v a="${s0%% *}" -v b="${s1%% *}" -v h="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / h}'
}
# Other work on the machine disturbs the figures: wait (at most WAIT seconds) until it
# is quiet; QUIET_AT_START is the load then.
# Up to 5 s for the machine to calm down after the previous subject (its connections'
# teardown), so that a startup is timed on a quiet machine.
settle() {
    local _
    for _ in 1 2 3 4 5; do
        awk -v b="$(busy_now)" 'BEGIN {exit !(b < 0.25)}' && return 0
    done
    return 0
}
wait_quiet() { # WAIT
    local i
    for i in $(seq "$1"); do
        QUIET_AT_START=$(busy_now)
        awk -v b="$QUIET_AT_START" 'BEGIN {exit !(b < 0.25)}' && return 0
        ((i == 1)) && log "machine busy ($QUIET_AT_START cores in use by other work): waiting up to $1 s"
    done
    log "machine still busy ($QUIET_AT_START cores): measuring anyway, figures will be noisy"
}

# A fresh topology PREFIX with the router in MODE (and, for init, one redirect: port
# 9000 -> the server) and the loadgen server running.
topology_up() { # PREFIX MODE
    topology_base "$1"
    router_init "$1" "$2" "$PORT tcp ${SERVER%:*}"
    loadgen_server "$1"
}

# The namespaces of topology PREFIX, tuned for tens of thousands of short connections.
topology_base() { # PREFIX
    local p=$1 ns
    bash tests/topology.sh up "$p"
    # resolvers of the router namespace: a documentation address, never the host's
    mkdir -p "/etc/netns/$p-router"
    echo "nameserver 203.0.113.53" >"/etc/netns/$p-router/resolv.conf"
    for ns in "$p-client" "$p-router" "$p-server"; do
        # tens of thousands of short connections in a few seconds
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
    done
    # ... but never the proxies' listening ports: a connection of an earlier run that
    # took one as its own port (or waits out TIME_WAIT on it) would make the next
    # proxy's bind fail (the metrics endpoint's 9090 did)
    ip netns exec "$p-router" sysctl -qw net.ipv4.ip_local_reserved_ports="8080,9000,9090"
}

# egress-router's init step in MODE in topology PREFIX, redirecting DESTINATION.
router_init() { # PREFIX MODE DESTINATION
    local p=$1
    EGRESS_SOURCE=198.51.100.99 EGRESS_GATEWAY=198.51.100.1 EGRESS_ROUTER_MODE=$2 \
        EGRESS_DESTINATION="$3" \
        ip netns exec "$p-router" "$BIN" 2>"$WORK/init-$p.log" || { cat "$WORK/init-$p.log" >&2; exit 1; }
    # the router's NAT tracks every connection; closed ones are forgotten after 1 s, not
    # 120, so hundreds of thousands of them do not fill the (host-wide) table
    ip netns exec "$p-router" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 2>/dev/null || true
    # init leaves a helper announcing the source address for ~2 s: not a proxy to measure
    for _ in $(seq 100); do [[ -z $(ip netns pids "$p-router") ]] && break; sleep 0.1; done
}

# The loadgen server in topology PREFIX's server namespace, on every address.
loadgen_server() { # PREFIX
    local p=$1
    "${CL_PIN[@]}" ip netns exec "$p-server" "$LG" server --listen "0.0.0.0:$PORT" --max-seconds 1800 \
        >"$WORK/server-$p.out" 2>&1 &
    disown # ended by `topology.sh down` (it kills what runs in our namespaces), quietly
    for _ in $(seq 100); do grep -qs listening= "$WORK/server-$p.out" && break; sleep 0.1; done
    grep -q listening= "$WORK/server-$p.out" ||
        { echo "loadgen server did not start:" >&2; cat "$WORK/server-$p.out" >&2; exit 1; }
}

# loadgen in the client namespace of topology T, to the subject measured now (DIAL:
# direct, to 192.0.2.70:9000; routed, to the server's own address through the router;
# or connect, a CONNECT tunnel through 192.0.2.70:8080).
client_lg() {
    local how=(--direct --proxy "192.0.2.70:$PORT")
    [[ $DIAL == connect ]] && how=(--proxy 192.0.2.70:8080 --target "$SERVER")
    [[ $DIAL == routed ]] && how=(--direct --proxy "$SERVER")
    timeout 120 "${CL_PIN[@]}" ip netns exec "$T-client" "$LG" "$@" "${how[@]}"
}

# pids of the running proxy: every process in T's router namespace named in PROXY_COMMS
PROXY_COMMS="squid haproxy egress-router"
proxy_pids() {
    local pid
    for pid in $(ip netns pids "$T-router"); do
        [[ " $PROXY_COMMS " == *" $(cat "/proc/$pid/comm" 2>/dev/null) "* ]] && echo "$pid"
    done
    return 0
}
ticks() { # [--user|--children] PID...: their utime+stime (--user: utime; --children: and
    # that of their children waited for), in clock ticks
    local total=0 pid f sum='$12 + $13'
    [[ ${1:-} == --user ]] && { sum='$12'; shift; }
    [[ ${1:-} == --children ]] && { sum='$12 + $13 + $14 + $15'; shift; }
    for pid in "$@"; do
        f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + $(awk "{print $sum}" <<<"$f")))
    done
    echo "$total"
}
# shellcheck disable=SC2046 # pids, one word each
proxy_ticks() { ticks ${WITH_CHILDREN:+--children} $(proxy_pids); } # WITH_CHILDREN: the iptables tools too
# shellcheck disable=SC2046
proxy_user_ticks() { ticks --user $(proxy_pids); }
# shellcheck disable=SC2046
server_ticks() { ticks $(ip netns pids "$T-server"); }
# busy (not idle, not iowait) and stolen ticks of the machine, CPU 0 and CPU 1. Steal,
# time a virtual CPU wanted to run but the hypervisor ran something else, counts as busy:
# it was not available. On a VM it grows when CPUs often sleep and wake.
stat_snap() { awk '$1 ~ /^cpu[01]?$/ {printf "%d %d ", $2 + $3 + $4 + $7 + $8 + $9, $9} END {print ""}' /proc/stat; }
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
rec() { echo "$3" >>"$WORK/$1.$2"; } # NAME METRIC VALUE: one run's figure

wait_listening() { # NAME PORT: the proxy must listen within 10 s
    for _ in $(seq 100); do
        ip netns exec "$T-router" ss -Hltn "sport = :$2" | grep -q LISTEN && return 0
        sleep 0.1
    done
    echo "$1 is not listening on $2" >&2
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

start_er() { # PORT VAR=VALUE...: egress-router in T's router namespace with that environment
    "${PX_PIN[@]}" ip netns exec "$T-router" env -i PATH="$PATH" "${@:2}" "$BIN" \
        >"$WORK/er.out" 2>"$WORK/er.log" &
    PROXY_PID=$!
    wait_listening egress-router "$1" || { cat "$WORK/er.log" >&2; exit 1; }
}

# as the origin-egress-dns-proxy image: TCP mode, its timeouts and limits; its server
# HAPROXY_TARGET (default: SERVER), resolved through HAPROXY_RESOLVERS (a section) if set
start_haproxy() {
    local d=$WORK/haproxy
    mkdir -p "$d"
    cat >"$d/haproxy.cfg" <<CONF
global
    maxconn 4000
    pidfile $d/haproxy.pid
${HAPROXY_RESOLVERS:-}

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
    server dest1 ${HAPROXY_TARGET:-$SERVER} check
CONF
    "${PX_PIN[@]}" ip netns exec "$T-router" "$(command -v haproxy)" -db -f "$d/haproxy.cfg" >"$d/log" 2>&1 &
    PROXY_PID=$!
    wait_listening haproxy "$PORT" || { cat "$d/log" >&2; exit 1; }
}

start_squid() { # as the origin-egress-http-proxy image: port 8080, no cache, no access log
    local d=$WORK/squid
    mkdir -p "$d"
    chown proxy: "$d" 2>/dev/null || chmod 777 "$d"
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
    "${PX_PIN[@]}" ip netns exec "$T-router" "$(command -v squid)" -N -f "$d/squid.conf" >"$d/stdout" 2>&1 &
    PROXY_PID=$!
    wait_listening squid 8080 || { cat "$d/cache.log" "$d/stdout" >&2; exit 1; }
}

# ------------------------------------------------------------------ one run

# The rate test against the subject NAME: its figures and the CPU use of everyone.
rate_run() { # NAME
    local name=$1 out=$WORK/$1.tun p0 p1 u0 u1 v0 v1 s0 s1 t0 t1 measured
    measured=$(proxy_pids) # no process on a kernel path: no proxy figures
    p0=$(proxy_ticks) u0=$(proxy_user_ticks) v0=$(server_ticks) s0=$(stat_snap) t0=$EPOCHREALTIME
    client_lg tunnels --concurrency "$CONCURRENCY" --duration "$RATE_SECONDS" >"$out" 2>"$out.err" ||
        { log "$name: rate test failed:"; cat "$out.err" >&2; exit 1; }
    t1=$EPOCHREALTIME s1=$(stat_snap) v1=$(server_ticks) u1=$(proxy_user_ticks) p1=$(proxy_ticks)
    local n wall
    n=$(kv "$out" tunnels)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    rec "$name" rate "$(kv "$out" rate_per_s)"
    rec "$name" p50 "$(kv "$out" p50_ms)"
    rec "$name" p99 "$(kv "$out" p99_ms)"
    rec "$name" errors "$(kv "$out" errors)"
    [[ -n $measured ]] && rec "$name" cpu_k_user "$(awk -v u="$((u1 - u0))" -v h="$CLK_TCK" -v n="$n" \
        'BEGIN {printf "%.1f", u / h / n * 1e6}')"
    read -r -a s0 <<<"$s0"
    read -r -a s1 <<<"$s1"
    awk -v p="$((p1 - p0))" -v v="$((v1 - v0))" -v h="$CLK_TCK" -v w="$wall" -v n="$n" \
        -v c="$(kv "$out" client_cpu_s)" -v m="$((s1[0] - s0[0]))" -v st="$((s1[1] - s0[1]))" \
        -v m0="$((s1[2] - s0[2]))" -v m1="$((s1[4] - s0[4]))" -v st1="$((s1[5] - s0[5]))" 'BEGIN {
        printf "%.2f %.3f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.1f\n", p / h / w, p / h / n * 1e6, c / w,
            v / h / w, m / h / w, m0 / h / w, m1 / h / w, st / h / w, st1 / h / w,
            (m - st - p - v) / h / w - c / w, m / h / n * 1e6
    }' >"$out.cores"
    local k i=0
    for k in proxy_cores cpu_k client_cores server_cores busy busy0 busy1 steal steal1 other cpu_k_machine; do
        i=$((i + 1))
        # no proxy on a kernel path
        [[ -z $measured && ($k == proxy_cores || $k == cpu_k) ]] && continue
        rec "$name" "$k" "$(cut -d' ' -f$i "$out.cores")"
    done
}

bulk_run() { # NAME: 1 GiB down, 1 GiB up, and the proxy's CPU for both
    local name=$1 c0 c1 dir
    c0=$(proxy_ticks)
    for dir in down up; do
        local flag=()
        [[ $dir == up ]] && flag=(--up)
        client_lg bulk --bytes "$BULK_BYTES" "${flag[@]}" >"$WORK/$name.bulk" 2>&1 ||
            { log "$name: bulk $dir failed:"; cat "$WORK/$name.bulk" >&2; exit 1; }
        rec "$name" "$dir" "$(kv "$WORK/$name.bulk" mb_per_s)"
    done
    c1=$(proxy_ticks)
    [[ -z $(proxy_pids) ]] && return
    rec "$name" cpu_gib "$(awk -v t="$((c1 - c0))" -v h="$CLK_TCK" -v n="$BULK_BYTES" \
        'BEGIN {printf "%.3f", t / h / (2 * n / 2^30)}')"
}

idle_run() { # NAME: RSS per idle connection
    local name=$1 out=$WORK/$1.idle base idle_pid
    base=$(rss_kib)
    client_lg idle --count "$IDLE" --hold 3 >"$out" 2>&1 &
    idle_pid=$!
    for _ in $(seq 300); do grep -q idle_open= "$out" && break; sleep 0.1; done
    sleep 0.5
    rec "$name" rss "$(awk -v a="$(rss_kib)" -v b="$base" -v n="$IDLE" 'BEGIN {printf "%.2f", (a - b) / n}')"
    rec "$name" rss_base "$(awk -v b="$base" 'BEGIN {printf "%.1f", b / 1024}')"
    wait "$idle_pid" || { log "$name: idle connections failed:"; cat "$out" >&2; exit 1; }
    sleep 0.5
}

# What starting any program in the router namespace costs, as the proxies are started:
# the time to run `true` there. The startup figures of the proxies include it.
launch_run() { # NAME
    local since
    since=${EPOCHREALTIME/./}
    "${PX_PIN[@]}" ip netns exec "$T-router" env -i PATH="$PATH" true
    rec "$1" first "$(awk -v a="${EPOCHREALTIME/./}" -v b="$since" 'BEGIN {printf "%.1f", (a - b) / 1000}')"
}

# One run of the direct path: topology PD, no proxy.
run_direct() { # NAME
    T=$PD DIAL=direct
    settle
    launch_run "$1"
    bulk_run "$1"
    rate_run "$1"
}

# Starts a proxy with START ARGS... while the client retries one exchange through it:
# the time from just before the start to the first exchange served.
startup_run() { # NAME START ARGS...
    local out=$WORK/$1.startup-out since lg ms
    client_lg first >"$out" 2>&1 &
    lg=$!
    for _ in $(seq 500); do grep -q waiting "$out" && break; sleep 0.01; done
    since=${EPOCHREALTIME/./}
    "${@:2}"
    wait "$lg" || { log "$1: no exchange after the start:"; cat "$out" >&2; exit 1; }
    ms=$(awk -v a="$(kv "$out" first_at_us)" -v b="$since" 'BEGIN {if (a > b) printf "%.1f", (a - b) / 1000}')
    [[ -n $ms ]] || { log "$1: the proxy answered before it was started:"; cat "$out" >&2; exit 1; }
    rec "$1" first "$ms"
}

# One run of a proxy in topology PP: started with START ARGS... (its startup time
# measured), warmed up, measured, stopped. DIAL says how the client reaches it.
run_proxy() { # NAME DIAL START ARGS...
    T=$PP DIAL=$2
    settle
    startup_run "$1" "${@:3}"
    client_lg tunnels --concurrency 4 --duration 1 >"$WORK/$1.warm" 2>&1 ||
        { log "$1: warm-up failed:"; cat "$WORK/$1.warm" >&2; exit 1; }
    idle_run "$1"
    bulk_run "$1"
    rate_run "$1"
    stop_proxy
}

# ------------------------------------------------------------------ report

stat3() { # NAME METRIC -> "median min max" of its runs, or nothing
    [[ -s $WORK/$1.$2 ]] || return 0
    sort -g "$WORK/$1.$2" | awk '{v[NR] = $1} END {
        printf "%s %s %s\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR]}'
}
med() { local s; s=$(stat3 "$1" "$2"); echo "${s%% *}"; }
cell() { # NAME METRIC FORMAT -> "median (min-max)"
    local s
    s=$(stat3 "$1" "$2")
    [[ -n $s ]] || { echo -; return; }
    awk -v f="$3" -v s="$s" 'BEGIN {split(s, v, " "); printf f " (" f "-" f ")", v[1], v[2], v[3]}'
}
# per run, NAME's METRIC as a percentage of the direct run next to it
pct_of_direct() { # NAME DIRECT METRIC
    paste "$WORK/$1.$3" "$WORK/$2.$3" | awk '$2 > 0 {printf "%.1f\n", 100 * $1 / $2}' >"$WORK/$1.$3_pct"
}

# Was the proxy NAME the bottleneck of its rate test? yes (it used >= 0.9 cores; pinned:
# >= 90% of what the hypervisor left of CPU 1), no (it used less while the client's CPUs
# were saturated: > 90% of the machine busy, pinned: of CPU 0), or idle (neither:
# latency-bound).
bottleneck() { # NAME
    local pc busy steal=0 n=$NCPU
    pc=$(med "$1" proxy_cores)
    busy=$(med "$1" busy)
    [[ -n $PINNED ]] && busy=$(med "$1" busy0) steal=$(med "$1" steal1) n=1
    awk -v p="$pc" -v b="$busy" -v s="$steal" -v n="$n" 'BEGIN {
        if (p >= 0.9 * (1 - s)) print "yes"; else if (b > 0.9 * n) print "no"; else print "idle" }'
}

TABLE_FORMAT='  %-36s %-6s %-24s %-24s %-24s %s\n'
# The table of one comparison: DIRECT, PEER (its label PEER_LABEL) and ER.
report() { # TITLE DIRECT PEER PEER_LABEL ER
    local d=$2 p=$3 pl=$4 e=$5 bp be
    bp=$(bottleneck "$p") be=$(bottleneck "$e")
    pct_of_direct "$p" "$d" down
    pct_of_direct "$p" "$d" up
    pct_of_direct "$e" "$d" down
    pct_of_direct "$e" "$d" up
    echo
    echo "$1"
    # shellcheck disable=SC2059
    printf "$TABLE_FORMAT" figure unit direct "$pl" egress-router "er/$pl"
    row() { # LABEL UNIT METRIC FORMAT [RATE]
        local ratio
        ratio=$(awk -v a="$(med "$e" "$3")" -v b="$(med "$p" "$3")" \
            'BEGIN {if (a != "" && b > 0) printf "%.2fx", a / b; else print "-"}')
        [[ $3 == *_pct ]] && ratio=""
        if [[ -n ${5:-} ]]; then
            if [[ $bp == no && $be == no ]] || [[ $5 == latency && ($bp == no || $be == no) ]]; then
                ratio="proxy not the bottleneck: ratio not meaningful"
            elif [[ $be == no ]]; then
                ratio=">= $ratio (egress-router not the bottleneck)"
            elif [[ $bp == no ]]; then
                ratio="<= $ratio ($pl not the bottleneck)"
            fi
        fi
        # shellcheck disable=SC2059
        printf "$TABLE_FORMAT" "$1" "$2" "$(cell "$d" "$3" "$4")" "$(cell "$p" "$3" "$4")" \
            "$(cell "$e" "$3" "$4")" "$ratio"
    }
    row "connections/s, $CONCURRENCY workers, $RATE_SECONDS s" 1/s rate %.0f rate
    row "connection latency p50" ms p50 %.2f latency
    row "connection latency p99" ms p99 %.2f latency
    row "proxy CPU per 1,000 connections" ms cpu_k %.1f
    row "  of which in user space" ms cpu_k_user %.1f
    row "bulk down 1 GiB (server -> client)" MB/s down %.0f
    row "  % of direct" % down_pct %.0f
    row "bulk up 1 GiB (client -> server)" MB/s up %.0f
    row "  % of direct" % up_pct %.0f
    row "proxy CPU per GiB (down and up)" s cpu_gib %.2f
    row "RSS per idle connection ($IDLE open)" KiB rss %.1f
    row "RSS idle" MiB rss_base %.1f
    row "startup to first exchange" ms first %.1f
    # shellcheck disable=SC2059
    printf "$TABLE_FORMAT" "failed connections, all runs" count \
        "$(awk '{s += $1} END {print s + 0}' "$WORK/$d.errors")" \
        "$(awk '{s += $1} END {print s + 0}' "$WORK/$p.errors")" \
        "$(awk '{s += $1} END {print s + 0}' "$WORK/$e.errors")" ""
    echo "  rate test, CPU in use (cores, medians): who was the bottleneck"
    cores_line direct "$d" ""
    cores_line "$pl" "$p" "$bp"
    cores_line egress-router "$e" "$be"
}
cores_line() { # LABEL NAME VERDICT
    local what machine
    case $3 in
    yes) what="the proxy was the bottleneck" ;;
    no) what="proxy not the bottleneck (< 0.9 cores, the client's CPUs saturated)" ;;
    idle) what="neither the proxy (< 0.9 cores) nor the CPUs (< 90%) saturated" ;;
    *) what="" ;;
    esac
    if [[ -n $PINNED ]]; then
        machine="busy: CPU 0 (client, server) $(med "$2" busy0), CPU 1 (proxy) $(med "$2" busy1), its steal $(med "$2" steal1)"
    else
        machine="busy: machine $(med "$2" busy) of $NCPU"
    fi
    printf '    %-14s proxy %-5s client %-5s server %-5s other %-5s steal %-5s %s%s\n' "$1" \
        "$(med "$2" proxy_cores)" "$(med "$2" client_cores)" "$(med "$2" server_cores)" \
        "$(med "$2" other)" "$(med "$2" steal)" "$machine" "${what:+: $what}"
}

machine_line() {
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $NCPU CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
}
