#!/usr/bin/env bash
# egress-router demo: a client pod reaches outside servers through the router pod,
# and the servers see the router's EGRESS_SOURCE, not the client.
#
#   sudo bash examples/demo.sh
#
# Everything runs in throw-away network namespaces (tests/topology.sh) with
# documentation addresses only; they are removed on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
P=demo$$
R=$P-router C=$P-client S=$P-server
SOURCE=198.51.100.99

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [[ $EUID -ne 0 ]]; then
    echo "run as root: sudo bash examples/demo.sh" >&2
    exit 1
fi

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables-save >/dev/null || missing+=(iptables)
command -v socat >/dev/null || missing+=(socat)
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

say "building the release binary"
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    # build as the invoking user: their toolchain, their target/ ownership
    sudo -u "$SUDO_USER" -H bash -lc "cd '$ROOT' && cargo build --release -q"
else
    cargo build --release -q
fi
BIN=$ROOT/target/release/egress-router

cleanup() {
    for pid in ${SERVERS:-}; do kill "$pid" 2>/dev/null || true; done
    bash "$ROOT/tests/topology.sh" down "$P"
}
trap cleanup EXIT
say "topology $P: client 192.0.2.10 -> router pod 192.0.2.70 -> gateway 198.51.100.1 -> servers 203.0.113.0/24"
bash tests/topology.sh up "$P"

SERVERS=
for port in 80 5000; do
    ip netns exec "$S" socat TCP-LISTEN:$port,fork,reuseaddr \
        SYSTEM:'echo server saw source $SOCAT_PEERADDR on $SOCAT_SOCKADDR port $SOCAT_SOCKPORT' &
    SERVERS+=" $!"
done
for _ in $(seq 50); do
    n=$(ip netns exec "$S" ss -Hltn '( sport = :80 or sport = :5000 )' | wc -l)
    ((n == 2)) && break
    sleep 0.1
done

DEST='80 tcp 203.0.113.5
8080 tcp 203.0.113.6 5000
203.0.113.7'
say "router init with EGRESS_SOURCE=$SOURCE EGRESS_GATEWAY=198.51.100.1 and EGRESS_DESTINATION:"
echo "$DEST" | sed 's/^/    /'
EGRESS_SOURCE=$SOURCE EGRESS_GATEWAY=198.51.100.1 EGRESS_DESTINATION=$DEST \
    EGRESS_ROUTER_MODE=init ip netns exec "$R" "$BIN"

say "NAT rules in the router pod (iptables-save -t nat)"
ip netns exec "$R" iptables-save -t nat | grep -E '^(\*|-A)' | sed 's/^/    /'
say "routes in the router pod"
ip -n "$R" route show | sed 's/^/    /'

ok=1
for port in 80 8080; do
    say "client: socat - TCP:192.0.2.70:$port"
    got=$(timeout 10 ip netns exec "$C" socat -t5 -T5 - TCP:192.0.2.70:$port </dev/null || true)
    echo "    $got"
    seen=$(awk '{print $4}' <<<"$got")
    if [[ $seen == "$SOURCE" ]]; then
        echo "    OK: the server saw the egress source $SOURCE"
    else
        echo "    FAIL: the server saw '${seen:-nothing}', expected $SOURCE"
        ok=0
    fi
done

((ok)) && say "demo passed" || { say "demo FAILED"; exit 1; }
