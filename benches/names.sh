# shellcheck shell=bash
# The names half of benches/compare.sh (issue 25): one name target, bench.example.org
# (-> 203.0.113.5, the loadgen server; dnsmasq on 203.0.113.53, TTL 1 s, so whoever
# follows it asks every second), reached six ways, each in a topology of its own, runs
# interleaved:
#   direct    the client dials 203.0.113.5:9000 itself; the router pod forwards it (with
#             the egress SNAT) without any DNAT: the data path with no redirect
#   dnat      hand-written static rules, as one would type them: `iptables -t nat -A
#             PREROUTING -i eth0 -p tcp --dport 9000 -j DNAT --to-destination
#             203.0.113.5`, the SNAT, ip_forward=1 (the kernel data path's own limit)
#   redirect  egress-router: init with `9000 tcp bench.example.org` and the redirect
#             container following the name
#   moving    the same while the name flips between 203.0.113.5 and .6 every second
#   dns-proxy egress-router's DNS proxy, EGRESS_DNS_PROXY_DESTINATION="9000 bench.example.org"
#   haproxy   haproxy configured as the origin-egress-dns-proxy image, its server the name
#             (a resolvers section asking 203.0.113.53)
# Each: bulk (1 GiB each way) and the rate test; the machine's CPU per 1,000 connections
# (everything: loadgen, forwarder, kernel) from /proc/stat. Sourced by compare.sh after
# benches/lib.sh, not run.

NAME=bench.example.org
declare -A DNS_PID=()
REDIRECT_PID=''

# dnsmasq answering NAME from WORK/hosts-PREFIX in topology PREFIX's server namespace,
# reachable from the router before its setup too: the node routes the outside network
# through the gateway and masquerades, as a node does for its pods (init resolves first).
name_dns() { # PREFIX
    local p=$1
    echo "${SERVER%:*} $NAME" >"$WORK/hosts-$p"
    ip netns exec "$p-node" ip route add 203.0.113.0/24 via 198.51.100.1
    ip netns exec "$p-node" iptables-nft -t nat -A POSTROUTING -o uplink0 -j MASQUERADE
    ip netns exec "$p-server" "$(command -v dnsmasq)" --no-daemon --no-resolv --no-hosts \
        --conf-file=/dev/null --pid-file= --user=root --port=53 --listen-address=203.0.113.53 \
        --bind-interfaces --local=/example.org/ --local-ttl=1 --addn-hosts="$WORK/hosts-$p" \
        >"$WORK/dnsmasq-$p.log" 2>&1 &
    DNS_PID[$p]=$!
    disown # ended by `topology.sh down`
    for _ in $(seq 50); do
        ip netns exec "$p-router" getent ahostsv4 "$NAME" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "dnsmasq in $p does not answer $NAME:"
    cat "$WORK/dnsmasq-$p.log" >&2
    exit 1
}

point_name() { # PREFIX ADDRESS: NAME answers ADDRESS from now on
    echo "$2 $NAME" >"$WORK/hosts-$1.new"
    mv "$WORK/hosts-$1.new" "$WORK/hosts-$1"
    kill -HUP "${DNS_PID[$1]}"
}

# A topology PREFIX whose router has the network set up and no NAT, forwarding on.
bare_router() { # PREFIX
    topology_base "$1"
    router_init "$1" http-proxy "$PORT tcp ${SERVER%:*}"
    ip netns exec "$1-router" sysctl -qw net.ipv4.ip_forward=1
}

names_topologies() {
    bare_router "$PR"
    ip netns exec "$PR-router" iptables-nft -t nat -A POSTROUTING -j SNAT --to-source 198.51.100.99
    ip netns exec "$PR-node" ip route add 203.0.113.0/24 via 192.0.2.70
    loadgen_server "$PR"

    bare_router "$PS"
    ip netns exec "$PS-router" iptables-nft -t nat -A PREROUTING -i eth0 -p tcp --dport "$PORT" \
        -j DNAT --to-destination "${SERVER%:*}"
    ip netns exec "$PS-router" iptables-nft -t nat -A POSTROUTING -j SNAT --to-source 198.51.100.99
    loadgen_server "$PS"

    topology_base "$PN"
    name_dns "$PN"
    router_init "$PN" init "$PORT tcp $NAME"
    loadgen_server "$PN"
    "${PX_PIN[@]}" ip netns exec "$PN-router" env -i PATH="$PATH" EGRESS_SOURCE=198.51.100.99 \
        EGRESS_GATEWAY=198.51.100.1 EGRESS_ROUTER_MODE=init EGRESS_DESTINATION="$PORT tcp $NAME" \
        "$BIN" redirect >/dev/null 2>"$WORK/redirect.log" &
    REDIRECT_PID=$!
    for _ in $(seq 100); do grep -qs "setup verified" "$WORK/redirect.log" && break; sleep 0.1; done
    grep -q "setup verified" "$WORK/redirect.log" || { cat "$WORK/redirect.log" >&2; exit 1; }

    topology_base "$PP"
    router_init "$PP" dns-proxy "$PORT tcp ${SERVER%:*}"
    name_dns "$PP"
    loadgen_server "$PP"
}

updates() { grep -c "rules replaced" "$WORK/redirect.log" || true; }

# One run of a subject without a proxy process of its own to start: topology PREFIX,
# reached by DIAL; with FLIP, the name moves every second meanwhile.
kernel_run() { # NAME PREFIX DIAL [FLIP]
    local u0 flipper=''
    T=$2 DIAL=$3
    settle
    client_lg tunnels --concurrency 4 --duration 1 >"$WORK/$1.warm" 2>&1 ||
        { log "$1: warm-up failed:"; cat "$WORK/$1.warm" >&2; exit 1; }
    u0=$(updates)
    if [[ -n ${4:-} ]]; then
        (
            i=0
            while :; do
                if ((i % 2)); then point_name "$T" "${SERVER%:*}"; else point_name "$T" 203.0.113.6; fi
                i=$((i + 1))
                sleep 1
            done
        ) &
        flipper=$!
    fi
    WITH_CHILDREN=1 # the redirect container's iptables tools are its work too
    bulk_run "$1"
    rate_run "$1"
    WITH_CHILDREN=''
    if [[ -n $flipper ]]; then
        kill "$flipper"
        wait "$flipper" 2>/dev/null || true
        point_name "$T" "${SERVER%:*}"
    fi
    [[ $2 == "$PN" ]] && rec "$1" updates "$(($(updates) - u0))"
    return 0
}

# One run of a proxy in topology PP: started with START ARGS..., measured, stopped.
names_proxy_run() { # NAME START ARGS...
    T=$PP DIAL=direct
    settle
    "${@:2}"
    client_lg tunnels --concurrency 4 --duration 1 >"$WORK/$1.warm" 2>&1 ||
        { log "$1: warm-up failed:"; cat "$WORK/$1.warm" >&2; exit 1; }
    bulk_run "$1"
    rate_run "$1"
    stop_proxy
}

start_haproxy_name() {
    HAPROXY_RESOLVERS=$'resolvers egress\n    nameserver dns 203.0.113.53:53\n    hold valid 1s' \
        HAPROXY_TARGET="$NAME:$PORT resolvers egress init-addr libc,none resolve-prefer ipv4" \
        start_haproxy
}

names_runs() {
    local i
    names_topologies
    for i in $(seq "$REPS"); do
        log "  run $i of $REPS: direct, static DNAT, redirect, redirect while the name moves, DNS proxy, haproxy"
        kernel_run n-direct "$PR" routed
        kernel_run n-dnat "$PS" direct
        kernel_run n-redirect "$PN" direct
        kernel_run n-moving "$PN" direct flip
        names_proxy_run n-dns start_er "$PORT" EGRESS_DNS_PROXY_DESTINATION="$PORT $NAME"
        names_proxy_run n-haproxy start_haproxy_name
    done
    kill "$REDIRECT_PID" 2>/dev/null || true
    for p in "$PR" "$PS" "$PN" "$PP"; do bash tests/topology.sh down "$p"; done
}

# ------------------------------------------------------------------ report

N_SUBJECTS=(n-direct n-dnat n-redirect n-moving n-dns n-haproxy)
N_FORMAT='  %-34s %-5s %-22s %-22s %-22s %-22s %-22s %s\n'

n_ratio() { # A B METRIC -> "1.23x"
    awk -v a="$(med "$1" "$3")" -v b="$(med "$2" "$3")" \
        'BEGIN {if (a != "" && b > 0) printf "%.2fx", a / b; else print "-"}'
}

# Who was the bottleneck of NAME's rate test: a proxy at >= 0.9 cores; else, with the
# machine saturated, the load generator (on the kernel paths the forwarding is the
# kernel's work, in the client's and the server's time), unless other work (0.25 cores
# or more: other programs; on a quiet machine it is a few hundredths) disturbed it.
n_verdict() { # NAME
    awk -v p="$(med "$1" proxy_cores)" -v b="$(med "$1" busy)" -v n="$NCPU" -v o="$(med "$1" other)" 'BEGIN {
        if (p >= 0.9) print "the proxy was the bottleneck"
        else if (b <= 0.9 * n) print "neither the forwarder nor the machine saturated"
        else if (o >= 0.25) printf "the machine was saturated, %.2f cores of it other work: figures disturbed\n", o
        else print "the machine was saturated by the load generator: it, not the forwarder, was the bottleneck" }'
}

names_report() {
    local s
    echo
    echo "Name targets: bench.example.org (TTL 1 s) through the kernel (direct, hand-written DNAT, egress-router redirect) and through proxies"
    # shellcheck disable=SC2059
    printf "$N_FORMAT" figure unit direct "static DNAT" "redirect (name)" "redirect, moving" "DNS proxy (name)" "haproxy (name)"
    n_row() { # LABEL UNIT METRIC FORMAT
        local cells=()
        for s in "${N_SUBJECTS[@]}"; do cells+=("$(cell "$s" "$3" "$4")"); done
        # shellcheck disable=SC2059
        printf "$N_FORMAT" "$1" "$2" "${cells[@]}"
    }
    n_row "connections/s, $CONCURRENCY workers, $RATE_SECONDS s" 1/s rate %.0f
    n_row "connection latency p50" ms p50 %.2f
    n_row "connection latency p99" ms p99 %.2f
    n_row "machine CPU per 1,000 connections" ms cpu_k_machine %.1f
    n_row "forwarder processes' CPU per 1,000" ms cpu_k %.1f
    n_row "bulk down 1 GiB (server -> client)" MB/s down %.0f
    n_row "bulk up 1 GiB (client -> server)" MB/s up %.0f
    n_row "rule updates during the run" count updates %.0f
    local failed=()
    for s in "${N_SUBJECTS[@]}"; do failed+=("$(awk '{s += $1} END {print s + 0}' "$WORK/$s.errors")"); done
    # shellcheck disable=SC2059
    printf "$N_FORMAT" "failed connections, all runs" count "${failed[@]}"
    for s in n-redirect n-moving; do
        echo "  $s / static DNAT: rate $(n_ratio "$s" n-dnat rate), p50 $(n_ratio "$s" n-dnat p50), bulk down $(n_ratio "$s" n-dnat down), up $(n_ratio "$s" n-dnat up), machine CPU per 1,000 connections $(n_ratio "$s" n-dnat cpu_k_machine)"
    done
    for s in n-redirect n-dnat n-dns; do
        echo "  $s / haproxy: rate $(n_ratio "$s" n-haproxy rate), p50 $(n_ratio "$s" n-haproxy p50), machine CPU per 1,000 connections $(n_ratio "$s" n-haproxy cpu_k_machine); / direct: rate $(n_ratio "$s" n-direct rate)"
    done
    echo "  rate test, CPU in use (cores, medians): who was the bottleneck"
    for s in "${N_SUBJECTS[@]}"; do
        printf '    %-11s forwarder process %-5s client %-5s server %-5s other %-5s busy: machine %-5s of %s: %s\n' \
            "$s" "$(med "$s" proxy_cores)" "$(med "$s" client_cores)" "$(med "$s" server_cores)" \
            "$(med "$s" other)" "$(med "$s" busy)" "$NCPU" "$(n_verdict "$s")"
    done
}
