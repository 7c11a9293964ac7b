#!/usr/bin/env bash
# Where the DNS proxy's TCP forwarder spends its time under the rate test of
# benches/compare.sh (32 workers: connect, 64 bytes back, close), kept as text so the
# next change starts from data:
#
#   sudo bash benches/profile.sh [--pinned]    # ~2 min, more the first time (build)
#
# writes
#   benches/profiles/dns-proxy-rate.txt           perf record -g of the egress-router
#                                                 process: flat and inclusive profiles
#   benches/profiles/dns-proxy-rate-syscalls.txt  syscalls per connection of
#                                                 egress-router and haproxy (strace -c,
#                                                 and perf stat's syscall tracepoints)
#
# egress-router is built with symbols and frame pointers for this, in target/profile
# (the release profile of Cargo.toml, not stripped). perf (linux-perf), strace and
# haproxy are installed with apt-get if missing. The topology and the proxies' setup are
# those of benches/compare.sh (benches/lib.sh); --pinned as there.
set -euo pipefail

PINNED=''
case ${1:-} in
--pinned) PINNED=1 ;;
'') ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")/.."
source benches/lib.sh
bench_setup benches/profile.sh haproxy strace
command -v perf >/dev/null || install_without_service linux-perf
perf stat -e cpu-clock true >/dev/null 2>&1 || { echo "perf does not work here" >&2; exit 1; }
log "building egress-router with symbols and frame pointers (target/profile)"
BUILD_ENV="CARGO_PROFILE_RELEASE_STRIP=false RUSTFLAGS=-Cforce-frame-pointers=yes" \
    build --target-dir target/profile
BIN=$ROOT/target/profile/release/egress-router
OUT=$ROOT/benches/profiles
mkdir -p "$OUT"
wait_quiet 30

MODE="unpinned: client, server and proxy share all $NCPU CPUs"
[[ -n $PINNED ]] && MODE="pinned: loadgen client and server on CPU 0, the proxy on CPU 1"
HEAD="$(machine_line); $MODE
egress-router $(git describe --always --dirty 2>/dev/null || echo '?') built with
CARGO_PROFILE_RELEASE_STRIP=false RUSTFLAGS=-Cforce-frame-pointers=yes (target/profile);
the topology, proxy configuration and load of benches/compare.sh (benches/lib.sh):
$CONCURRENCY loadgen workers, each: connect to 192.0.2.70:$PORT, SEND 64, read 64 bytes and the
end of stream, close; the forwarder relays to the loadgen server $SERVER."

topology_up "$PP" dns-proxy
T=$PP DIAL=direct
ER_ENV=(EGRESS_DNS_PROXY_DESTINATION="$PORT ${SERVER%:*}")

# The rate test in the background for SECONDS; its output in FILE.
load() { # SECONDS FILE
    client_lg tunnels --concurrency "$CONCURRENCY" --duration "$1" >"$2" 2>&1 &
    LOAD_PID=$!
}

# ------------------------------------------------------------------ perf record

log "perf record of egress-router during the rate test"
start_er "$PORT" "${ER_ENV[@]}"
client_lg tunnels --concurrency 4 --duration 1 >/dev/null
pid=$(proxy_pids | paste -sd,)
load 10 "$WORK/perf.tun"
sleep 2
perf record -e cpu-clock -F 999 -g -p "$pid" -o "$WORK/perf.data" -- sleep 5 2>"$WORK/perf.log" >&2
wait "$LOAD_PID"
stop_proxy
# the first N lines (and the rest read: no SIGPIPE for the writer)
top() { head -n "$1"; cat >/dev/null; }
# perf report without its comment lines
report() { perf report -i "$WORK/perf.data" --stdio "$@" 2>/dev/null | grep -v -e '^#' -e '^$' || true; }
{
    echo "egress-router DNS proxy (TCP forwarder) under the connection rate test: perf profile"
    echo
    echo "$HEAD"
    echo "perf record -e cpu-clock -F 999 -g -p PID -- sleep 5, 2 s into a 10 s rate run of"
    echo "$(kv "$WORK/perf.tun" rate_per_s) connections/s (a little slower while recorded). No hardware PMU on this"
    echo "virtual machine: cpu-clock sampling, $(perf report -i "$WORK/perf.data" --stdio 2>/dev/null |
        awk '/^# Samples/ {print $3; exit}') samples. [k] kernel, [.] user space. Between namespaces (veth),"
    echo "the kernel hands a packet to the next namespace's stack in the sender's context (softirq): time"
    echo "under connect, sendto or shutdown includes the receiving side's TCP work."
    echo
    echo "== where: perf report --no-children -g none --sort dso"
    report --no-children -g none --sort dso --percent-limit 0.5
    echo
    echo "== time by syscall, inclusive (what the kernel does for it, the network path of the"
    echo "   packets it sends included): perf report --children -g none --sort sym, __x64_sys_*"
    report --children -g none --sort sym --percent-limit 0.3 | grep -e '__x64_sys_' -e 'exit_to_user_mode' || true
    echo
    echo "== user space, self: perf report --no-children -g none --sort dso,sym --percent-limit 0.2"
    echo "   (egress-router and libc only)"
    report --no-children -g none --sort dso,sym --percent-limit 0.2 | grep -v kernel.kallsyms | top 30
    echo
    echo "== flat: perf report --stdio --no-children --percent-limit 1 -g none --sort sym"
    report --no-children --percent-limit 1 -g none --sort sym
    echo
    echo "== with call chains: perf report --stdio --no-children --percent-limit 1 (top 60 lines)"
    report --no-children --percent-limit 1 | top 60
} >"$OUT/dns-proxy-rate.txt"

# ------------------------------------------------------------------ syscalls

# Syscall counts of the proxy for SECONDS during the rate test: strace -c (ptrace: slows
# the proxy several times, the counts per connection change less) and perf stat's
# sys_enter tracepoints (no slowdown worth the name). Connections: successful accepts.
syscalls() { # NAME START ARGS...
    local name=$1
    "${@:2}"
    client_lg tunnels --concurrency 4 --duration 1 >/dev/null
    local pids
    pids=$(proxy_pids | paste -sd,)
    load 10 "$WORK/$name.s.tun"
    sleep 2
    timeout -s INT 4 strace -c -f -p "$pids" -o "$WORK/$name.strace" 2>/dev/null || true
    sleep 0.5
    perf stat -x, -e 'syscalls:sys_enter_*' -e syscalls:sys_exit_accept4 --filter 'ret >= 0' \
        -p "$pids" -o "$WORK/$name.pstat" -- sleep 3 2>/dev/null
    wait "$LOAD_PID"
    stop_proxy
    {
        echo "== $name: strace -c -f -p PID for 4 s (kill -INT), 2 s into a 10 s rate run"
        awk '
            / accept4?$/ && $NF != "total" {acc += $4 - (NF == 6 ? $5 : 0)}
            {line[NR] = $0; n = NR}
            END {
                print "connections accepted (accept4 calls - errors): " acc
                for (i = 1; i <= n; i++) {
                    l = line[i]
                    if (l ~ /^-/ ) { print l "  -------"; continue }
                    split(l, f, " ")
                    if (f[1] == "%") { print l "  per conn"; continue }
                    c = f[4]
                    printf "%s  %8.2f\n", l, acc ? c / acc : 0
                }
            }' "$WORK/$name.strace"
        echo
        echo "== $name: perf stat -e 'syscalls:sys_enter_*' -p PID -- sleep 3 (next 3 s of the run)"
        awk -F, '
            $3 == "syscalls:sys_exit_accept4" {acc = $1; next}
            $3 ~ /sys_enter_/ && $1 + 0 > 0 {sub("syscalls:sys_enter_", "", $3); c[$3] = $1; total += $1}
            END {
                print "connections accepted (accept4 returning >= 0): " acc
                printf "%-20s %10s %10s\n", "syscall", "calls", "per conn"
                for (s in c) printf "%-20s %10d %10.2f\n", s, c[s], acc ? c[s] / acc : 0 | "sort -k2 -nr"
                close("sort -k2 -nr")
                printf "%-20s %10d %10.2f\n", "total", total, acc ? total / acc : 0
            }' "$WORK/$name.pstat"
        echo
    } >"$WORK/$name.syscalls"
}
log "syscall counts: haproxy, egress-router"
syscalls haproxy start_haproxy
syscalls egress-router start_er "$PORT" "${ER_ENV[@]}"
{
    echo "Syscalls per connection of the TCP forwarders under the connection rate test"
    echo
    echo "$HEAD"
    echo "haproxy $(haproxy -v | head -1 | awk '{print $3}'), configured as the origin-egress-dns-proxy image"
    echo "(benches/lib.sh). per conn: calls / connections accepted in the same window."
    echo
    cat "$WORK/haproxy.syscalls" "$WORK/egress-router.syscalls"
} >"$OUT/dns-proxy-rate-syscalls.txt"
log "written: benches/profiles/dns-proxy-rate.txt, benches/profiles/dns-proxy-rate-syscalls.txt"
