#!/usr/bin/env bash
# egress-router demo: every role a newcomer evaluates, a few lines each.
#
#   sudo bash examples/demo.sh
#
#   1. redirect: a client pod reaches outside servers through the router pod's NAT, and
#      the servers see the router's EGRESS_SOURCE, not the client
#   2. HTTP proxy: one name allowed, another denied, with the decision lines
#   3. DNS proxy: a forwarder to a name follows the name when its address changes
#   4. the operations endpoint: the DNS proxy's /readyz and a few lines of its /metrics
#
# Everything runs in throw-away network namespaces (tests/topology.sh), a fresh router
# pod per role, with documentation addresses only; they are removed on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SOURCE=198.51.100.99
DNS=203.0.113.53
WORK=$(mktemp -d)
P='' # the current topology prefix

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
indent() { sed 's/^/    /'; }

if [[ $EUID -ne 0 ]]; then
    echo "run as root: sudo bash examples/demo.sh" >&2
    exit 1
fi

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables-save >/dev/null || missing+=(iptables)
command -v socat >/dev/null || missing+=(socat)
[[ -x /usr/sbin/dnsmasq ]] || missing+=(dnsmasq-base)
if ((${#missing[@]})); then
    # shellcheck source=tests/apt.sh
    source "$ROOT/tests/apt.sh"
    apt_install "${missing[@]}"
fi

say "building the release binary"
if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    # build as the invoking user: their toolchain, their target/ ownership
    sudo -u "$SUDO_USER" -H bash -lc "cd '$ROOT' && cargo build --release -q"
else
    cargo build --release -q
fi
BIN=$ROOT/target/release/egress-router

# The current topology down (the servers, dnsmasq and the proxy in its namespaces go
# with it).
down() {
    [[ -n $P ]] || return 0
    bash "$ROOT/tests/topology.sh" down "$P"
    P=''
}
trap 'down; rm -rf "$WORK"' EXIT

# A fresh topology (client 192.0.2.10, router pod 192.0.2.70, gateway, servers
# 203.0.113.5-7 answering on ports 80 and 5000 with the source address they saw) and
# the router pod set up by init in MODE; extra environment: VAR=VALUE...
fresh() { # NAME MODE [VAR=VALUE...]
    down
    P=demo$$$1
    R=$P-router C=$P-client S=$P-server
    bash tests/topology.sh up "$P" >/dev/null
    for port in 80 5000; do
        ip netns exec "$S" socat TCP-LISTEN:$port,fork,reuseaddr \
            SYSTEM:'echo server saw source $SOCAT_PEERADDR on $SOCAT_SOCKADDR port $SOCAT_SOCKPORT' &
        disown # ended with its namespace
    done
    for _ in $(seq 50); do
        (($(ip netns exec "$S" ss -Hltn '( sport = :80 or sport = :5000 )' | wc -l) == 2)) && break
        sleep 0.1
    done
    env EGRESS_SOURCE=$SOURCE EGRESS_GATEWAY=198.51.100.1 EGRESS_ROUTER_MODE="$2" "${@:3}" \
        ip netns exec "$R" "$BIN" 2>"$WORK/init.log" || { cat "$WORK/init.log" >&2; exit 1; }
}

# dnsmasq on 203.0.113.53 answering from the hosts file $WORK/hosts (TTL 0), and the
# router pod's resolv.conf pointing at it.
start_dns() {
    mkdir -p "/etc/netns/$R"
    echo "nameserver $DNS" >"/etc/netns/$R/resolv.conf"
    ip netns exec "$S" /usr/sbin/dnsmasq --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
        --pid-file= --user=root --port=53 --listen-address=$DNS --bind-interfaces \
        --local=/example.com/ --addn-hosts="$WORK/hosts" 2>"$WORK/dnsmasq.log" &
    DNSMASQ=$!
    disown
    sleep 0.3
}

# A proxy in the router pod with VAR=VALUE... in its environment, its log in FILE;
# returns once its log says it listens.
start_proxy() { # FILE VAR=VALUE...
    ip netns exec "$R" env -i PATH="$PATH" "${@:2}" "$BIN" 2>"$1" &
    disown
    for _ in $(seq 100); do grep -q listening "$1" && return 0; sleep 0.05; done
    cat "$1" >&2
    exit 1
}

failed=0
# Did the server see the egress source (and, if given, at ADDRESS)?
check_seen() { # REPLY [ADDRESS]
    local seen at
    seen=$(grep -o 'saw source [^ ]*' <<<"$1" | awk '{print $3}' || true)
    at=$(grep -o ' on [^ ]*' <<<"$1" | awk '{print $2}' || true)
    if [[ $seen == "$SOURCE" && (-z ${2:-} || $at == "$2") ]]; then
        echo "    OK: the server${2:+ at $2} saw the egress source $SOURCE"
    else
        echo "    FAIL: the server saw '${seen:-nothing}' at '${at:-nowhere}', expected $SOURCE${2:+ at $2}"
        failed=1
    fi
}

# ------------------------------------------------------------------ redirect

say "1. redirect: init puts $SOURCE on macvlan0 and NATs EGRESS_DESTINATION"
DEST='80 tcp 203.0.113.5
8080 tcp 203.0.113.6 5000
203.0.113.7'
echo "$DEST" | indent
fresh redirect init EGRESS_DESTINATION="$DEST"
echo "    NAT rules in the router pod (iptables-save -t nat):"
ip netns exec "$R" iptables-save -t nat | grep -E '^-A' | sed 's/^/      /'
for port in 80 8080; do
    echo "    client: socat - TCP:192.0.2.70:$port"
    got=$(timeout 10 ip netns exec "$C" socat -t5 -T5 - TCP:192.0.2.70:$port </dev/null || true)
    echo "      $got"
    check_seen "$got"
done

# ------------------------------------------------------------------ HTTP proxy

say "2. HTTP proxy: EGRESS_HTTP_PROXY_DESTINATION=allowed.example.com"
fresh http http-proxy
printf '203.0.113.5 allowed.example.com\n203.0.113.6 denied.example.com\n' >"$WORK/hosts"
start_dns
start_proxy "$WORK/http.log" EGRESS_HTTP_PROXY_DESTINATION=allowed.example.com
for name in allowed denied; do
    echo "    client: CONNECT $name.example.com:80"
    got=$(printf 'CONNECT %s.example.com:80 HTTP/1.1\r\nHost: %s.example.com:80\r\n\r\n' $name $name |
        timeout 10 ip netns exec "$C" socat -t2 -T5 - TCP:192.0.2.70:8080 | tr -d '\r' |
        awk 'NR == 1 || (body && NF); !NF {body = 1}' || true) # the status line and the body
    indent <<<"$got" | sed 's/^/  /'
    if [[ $name == allowed ]]; then
        check_seen "$got"
    elif grep -q '^HTTP/1.1 403' <<<"$got"; then
        echo "    OK: denied with 403, no connection made"
    else
        echo "    FAIL: expected 403"
        failed=1
    fi
done
sleep 0.1 # the proxy writes a line that comes after quiet at once; let it land
echo "    the proxy's decision lines:"
grep -o 'decision .*' "$WORK/http.log" | indent | sed 's/^/  /'

# ------------------------------------------------------------------ DNS proxy

say "3. DNS proxy: EGRESS_DNS_PROXY_DESTINATION=\"5432 db.example.com 80\""
fresh dns dns-proxy
echo "203.0.113.5 db.example.com" >"$WORK/hosts"
start_dns
start_proxy "$WORK/dns.log" EGRESS_DNS_PROXY_DESTINATION="5432 db.example.com 80"
ask() {
    echo "    client: socat - TCP:192.0.2.70:5432"
    got=$(timeout 10 ip netns exec "$C" socat -t5 -T5 - TCP:192.0.2.70:5432 </dev/null || true)
    echo "      $got"
    check_seen "$got" "$1"
}
ask 203.0.113.5
echo "    db.example.com now 203.0.113.6 (TTL 0: the proxy re-resolves every 2 s)"
echo "203.0.113.6 db.example.com" >"$WORK/hosts"
kill -HUP "$DNSMASQ"
for _ in $(seq 40); do grep -q 'backends changed' "$WORK/dns.log" && break; sleep 0.1; done
grep -o 'backends changed.*' "$WORK/dns.log" | indent
ask 203.0.113.6

# ------------------------------------------------------------------ metrics

say "4. operations endpoint of the DNS proxy (EGRESS_METRICS_ADDRESS, default :9090)"
get() { # PATH: the body, fetched from the client namespace
    printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$1" |
        timeout 10 ip netns exec "$C" socat -t2 -T5 - TCP:192.0.2.70:9090 | tr -d '\r' |
        awk 'body; !NF {body = 1}' || true
}
echo "    client: GET http://192.0.2.70:9090/readyz -> $(get /readyz)"
metrics=$(get /metrics)
echo "    client: GET http://192.0.2.70:9090/metrics (some of its lines)"
grep -E '^egress_router_(connections_total|backend_up|bytes_total|upstream_connect_seconds_count)' <<<"$metrics" | indent
forwarded='egress_router_connections_total{role="dns-proxy",listener="5432",decision="allowed",reason="forwarded"} 2'
if grep -qxF "$forwarded" <<<"$metrics"; then
    echo "    OK: both connections counted, the current backend up"
else
    echo "    FAIL: expected the line $forwarded"
    failed=1
fi

((failed == 0)) && say "demo passed" || { say "demo FAILED"; exit 1; }
