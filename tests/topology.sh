#!/usr/bin/env bash
# Test topology for egress-router: the one definition used by the Rust tests,
# examples/demo.sh and benches/init-vs-shell.sh.
#
#   bash tests/topology.sh up PREFIX     # create PREFIX-{client,node,router,gw,server}
#   bash tests/topology.sh down PREFIX   # remove them (idempotent, never fails)
#
#  PREFIX-client           PREFIX-node                          PREFIX-router
#  eth0 192.0.2.10/26 ---- cl0     192.0.2.1/26
#  default via 192.0.2.1   pod0    192.0.2.65/26 ---------------- eth0 192.0.2.70/26
#                          ip_forward=1                          default via 192.0.2.65
#                          uplink0 198.51.100.2/24               rp_filter=1 (all, eth0)
#                            |  '- macvlan0 (mode private) ---> macvlan0 (DOWN, no address)
#                            |
#  PREFIX-gw                 |                                   PREFIX-server
#  lan0 198.51.100.1/24 -----'                                   eth0 203.0.113.5/24
#  wan0 203.0.113.1/24 ------------------------------------------     +203.0.113.6/24
#  ip_forward=1, no route to 192.0.2.0/24                             +203.0.113.7/24
#                                                                     +203.0.113.53/24 (DNS)
#                                                                default via 203.0.113.1
#
# Clients (192.0.2.0/26) sit in another subnet than the router pod (192.0.2.64/26) and
# the router has no cluster routes, only its default route. IPv6 is disabled everywhere
# so the only traffic is what a test sends. Only documentation addresses are used.
# 203.0.113.53 is where tests run a DNS server; a namespace's /etc/netns/NS/ (its
# resolv.conf for `ip netns exec`) is removed by `down` too.
set -euo pipefail

ROLES=(client node router gw server)

down() {
    local p=$1 ns pid
    for role in "${ROLES[@]}"; do
        ns="$p-$role"
        rm -rf "/etc/netns/$ns"
        [[ -e /run/netns/$ns ]] || continue
        # End processes left inside our own namespace (helpers, listeners), by pid.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    return 0
}

up() {
    local p=$1
    local C="$p-client" N="$p-node" R="$p-router" G="$p-gw" S="$p-server"
    for ns in "$C" "$N" "$R" "$G" "$S"; do
        ip netns add "$ns"
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
    done

    ip link add eth0 netns "$C" type veth peer name cl0 netns "$N"
    ip link add eth0 netns "$R" type veth peer name pod0 netns "$N"
    ip link add uplink0 netns "$N" type veth peer name lan0 netns "$G"
    ip link add wan0 netns "$G" type veth peer name eth0 netns "$S"

    # client pod
    ip -n "$C" addr add 192.0.2.10/26 dev eth0
    ip -n "$C" link set eth0 up
    ip -n "$C" route add default via 192.0.2.1 dev eth0

    # node
    ip -n "$N" addr add 192.0.2.1/26 dev cl0
    ip -n "$N" addr add 192.0.2.65/26 dev pod0
    ip -n "$N" addr add 198.51.100.2/24 dev uplink0
    for dev in cl0 pod0 uplink0; do ip -n "$N" link set "$dev" up; done
    ip netns exec "$N" sysctl -qw net.ipv4.ip_forward=1
    # what the cluster plugin does: macvlan on the uplink, moved into the pod, DOWN
    ip -n "$N" link add macvlan0 link uplink0 type macvlan mode private
    ip -n "$N" link set macvlan0 netns "$R"

    # router pod
    ip netns exec "$R" sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth0.rp_filter=1
    ip -n "$R" addr add 192.0.2.70/26 dev eth0
    ip -n "$R" link set eth0 up
    ip -n "$R" route add default via 192.0.2.65 dev eth0

    # gateway
    ip -n "$G" addr add 198.51.100.1/24 dev lan0
    ip -n "$G" addr add 203.0.113.1/24 dev wan0
    ip -n "$G" link set lan0 up
    ip -n "$G" link set wan0 up
    ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=1

    # server
    for a in 203.0.113.5 203.0.113.6 203.0.113.7 203.0.113.53; do ip -n "$S" addr add "$a/24" dev eth0; done
    ip -n "$S" link set eth0 up
    ip -n "$S" route add default via 203.0.113.1 dev eth0
}

cmd=${1:-} prefix=${2:-}
if [[ -z $prefix || ! $prefix =~ ^[A-Za-z0-9_.-]+$ ]]; then
    echo "usage: $0 up|down PREFIX" >&2
    exit 2
fi
case $cmd in
up)
    if [[ -e /run/netns/$prefix-router ]]; then
        echo "topology $prefix already exists" >&2
        exit 1
    fi
    trap 'rc=$?; if ((rc)); then echo "topology up $prefix failed, cleaning up" >&2; down "$prefix"; fi' EXIT
    up "$prefix"
    ;;
down) down "$prefix" ;;
*)
    echo "usage: $0 up|down PREFIX" >&2
    exit 2
    ;;
esac
