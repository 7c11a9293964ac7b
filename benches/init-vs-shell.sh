#!/usr/bin/env bash
# Benchmark: `egress-router` init vs the command sequence of the upstream OpenShift
# egress-router.sh, both with 20 EGRESS_DESTINATION lines (19 port lines + fallback).
#
#   sudo bash benches/init-vs-shell.sh        # RUNS=15 by default: RUNS=5 sudo -E ...
#
# Every run gets a FRESH topology (tests/topology.sh). Time is taken inside the router
# namespace with $EPOCHREALTIME right before and after, so `ip netns exec` is excluded
# for both. The shell sequence contains a synchronous `arping -A` (blocks ~1 s), so its
# median is also shown without that step.
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-15}
if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 1 || RUNS > 100)); then
    echo "RUNS must be 1..100" >&2
    exit 2
fi
if [[ $EUID -ne 0 ]]; then
    echo "run as root" >&2
    exit 1
fi
for tool in ip iptables-restore arping sysctl; do
    command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

P=bench$$
WORK=$(mktemp -d)
cleanup() {
    bash "$ROOT/tests/topology.sh" down "$P"
    rm -rf "$WORK"
}
trap cleanup EXIT

if command -v cargo >/dev/null; then cargo build --release -q; fi
export BIN=$ROOT/target/release/egress-router
[[ -x $BIN ]] || { echo "no $BIN: run cargo build --release first" >&2; exit 1; }
export SRC=198.51.100.99 GW=198.51.100.1

# 19 port lines (every third one with a DESTPORT) + fallback, and the same nat rules
DEST= RULES=
for i in $(seq 1 19); do
    port=$((10000 + i)) ip=203.0.113.$((5 + i % 2))
    if ((i % 3 == 0)); then
        DEST+="$port tcp $ip 80"$'\n'
        RULES+="-A PREROUTING -i eth0 -p tcp --dport $port -j DNAT --to-destination $ip:80"$'\n'
    else
        DEST+="$port tcp $ip"$'\n'
        RULES+="-A PREROUTING -i eth0 -p tcp --dport $port -j DNAT --to-destination $ip"$'\n'
    fi
done
DEST+="203.0.113.7"
RULES+="-A PREROUTING -i eth0 -j DNAT --to-destination 203.0.113.7"$'\n'
RULES+="-A POSTROUTING -j SNAT --to-source $SRC"$'\n'
export DEST RULES

# The upstream shell sequence, reproduced. Prints "total_us arping_us".
shell_setup() {
    local t0 t1 ta tb
    t0=$EPOCHREALTIME
    if ! ip route get "$GW" | grep -q macvlan0; then
        ip addr add "$SRC/32" dev macvlan0
        ip link set up dev macvlan0
        ip route add "$GW/32" dev macvlan0
        ip route del default
        ip route add default via "$GW" dev macvlan0
    fi
    ta=$EPOCHREALTIME
    arping -q -A -c 1 -I macvlan0 "$SRC" || true
    tb=$EPOCHREALTIME
    (sleep 2; arping -q -U -c 1 -I macvlan0 "$SRC") </dev/null >/dev/null 2>&1 &
    sysctl -q -w net.ipv4.ip_forward=1
    printf '*nat\n-F PREROUTING\n-F POSTROUTING\n%sCOMMIT\n' "$RULES" | iptables-restore --noflush
    t1=$EPOCHREALTIME
    echo "$((${t1/./} - ${t0/./})) $((${tb/./} - ${ta/./}))"
}
binary_setup() {
    local t0 t1
    t0=$EPOCHREALTIME
    EGRESS_SOURCE=$SRC EGRESS_GATEWAY=$GW EGRESS_DESTINATION=$DEST EGRESS_ROUTER_MODE=init \
        "$BIN" </dev/null >/dev/null 2>>"$LOG"
    t1=$EPOCHREALTIME
    echo "$((${t1/./} - ${t0/./}))"
}
export -f shell_setup binary_setup
export LOG=$WORK/binary.log

# Run FUNC in a fresh topology; append its output to FILE; check the rules are there.
measure() {
    local func=$1 file=$2 rc=0
    bash tests/topology.sh up "$P"
    timeout 30 ip netns exec "$P-router" bash -c "$func" >"$WORK/out" 2>>"$WORK/$func.err" || rc=$?
    # a detached helper may still hold no pipe of ours: output went to a file
    local n
    n=$(ip netns exec "$P-router" iptables-save -t nat | grep -c '^-A' || true)
    bash tests/topology.sh down "$P"
    if ((rc)); then
        echo "$func failed (exit $rc):" >&2
        cat "$WORK/$func.err" "$LOG" >&2 2>/dev/null || true
        exit 1
    fi
    if ((n != 21)); then
        echo "$func left $n nat rules, expected 21" >&2
        exit 1
    fi
    cat "$WORK/out" >>"$file"
}

median() { # column $2 of file $1, in ms
    awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{v[NR]=$1} END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'
}
median_without_arping() {
    awk '{print $1 - $2}' "$1" | sort -n | awk '{v[NR]=$1} END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'
}

echo "init with 20 destination lines, $RUNS runs each, fresh topology per run"
for i in $(seq 1 "$RUNS"); do
    measure binary_setup "$WORK/bin.txt"
    measure shell_setup "$WORK/sh.txt"
    printf '.'
done
echo

b=$(median "$WORK/bin.txt" 1)
s=$(median "$WORK/sh.txt" 1)
sn=$(median_without_arping "$WORK/sh.txt")
echo "median over $RUNS runs, ms:"
printf '  %-46s %8s\n' "egress-router init" "$b" \
    "upstream shell sequence" "$s" \
    "upstream shell sequence without sync arping" "$sn"
awk -v b="$b" -v s="$s" -v n="$sn" 'BEGIN {
    printf "  %-46s %7.2fx\n", "ratio shell / egress-router", s / b
    printf "  %-46s %7.2fx\n", "ratio shell without sync arping / egress-router", n / b }'
