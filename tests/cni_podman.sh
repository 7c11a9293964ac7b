#!/usr/bin/env bash
# CNI plugin under a real runtime: podman's CNI network backend runs the freshly built
# egress-router from a .conflist, for containers started in a "node" network namespace
# of the test topology (tests/topology.sh: node, gw, server, and the client in another
# subnet; its router namespace is not used). Run as root: `bash tests/cni_podman.sh`.
#
# - image: a root filesystem holding only busybox-static and its applet links,
#   imported with `podman import` (no registry, nothing downloaded)
# - podman: private --root/--runroot/--tmpdir under a temporary directory, its own
#   containers.conf (runc, cgroupfs, file events, CNI backend, network_config_dir with
#   this test's .conflist files, cni_plugin_dirs with the built binary as
#   `egress-router`), every podman command entered into the node's network namespace
#   with nsenter (not `ip netns exec`, which remounts /sys and hides the cgroup mounts)
# - checks: the container's interfaces, address and routes as it sees them, the result
#   as podman read it, the NAT chains in its namespace, traffic to a server that
#   answers with the peer address it saw, `podman restart` (DEL, then ADD); a container
#   with a cluster-side interface first (a bridge network, as Multus orders it), then
#   the plugin by `podman network connect`: redirect of a client's connections, reply
#   routing, gratuitous ARP, and DEL by `podman network disconnect` putting the routes
#   back; a container exiting by itself (DEL from podman's cleanup); podIP chosen by the
#   container's name (podman passes it as K8S_POD_NAME) for three containers started at
#   once; ADD failing before any change and after the interface moved into the pod
#   (rolled back), each making `podman run` fail with the plugin's message; after each
#   teardown: DEL logged by the plugin, no link left on the node, no network namespace
#   left, no CNI result cached; interfaceType routed with proxyArp (a veth pair, the
#   node's host route, rule, proxy entry, traffic from the source, nothing left after
#   DEL); and the Kubernetes examples of examples/kubernetes/cni/
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD

P=cp$$
N=$P-node
IMAGE=localhost/egress-router-busybox:test
WORK=$(mktemp -d)
# the plugin's log_file, every command logged: it must lie beneath /var/log
log=/var/log/egress-router-$P.log
# shellcheck source=tests/checks.sh
source "$ROOT/tests/checks.sh"

podman() { # podman in the node's namespace, with this test's storage and configuration
    nsenter --net="/run/netns/$N" podman --root "$WORK/root" --runroot "$WORK/runroot" \
        --tmpdir "$WORK/tmp" --storage-driver vfs --runtime runc --cgroup-manager cgroupfs \
        --events-backend file "$@"
}

cleanup() {
    if [[ -e /run/netns/$N ]]; then
        podman rm -a -f -t 0 >/dev/null 2>&1 || true
    fi
    bash "$ROOT/tests/topology.sh" down "$P"
    rm -f /var/lib/cni/results/"$P"-*
    # podman's storage holds read-only and immutable-looking files (vfs layers)
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
    rm -f "$log"
}
trap cleanup EXIT

if [[ $EUID -ne 0 ]]; then
    echo "tests/cni_podman.sh: needs root (network namespaces, podman)" >&2
    exit 1
fi
for tool in podman runc busybox nsenter socat iptables-save; do
    command -v "$tool" >/dev/null || { echo "tests/cni_podman.sh: $tool not found (tests/run.sh installs it)" >&2; exit 1; }
done
# the reference plugins (containernetworking-plugins) for the stand-in cluster network
CNI_PLUGINS=
for dir in /usr/lib/cni /opt/cni/bin; do
    [[ -x $dir/bridge && -x $dir/host-local ]] && { CNI_PLUGINS=$dir; break; }
done
[[ -n $CNI_PLUGINS ]] || { echo "tests/cni_podman.sh: CNI bridge and host-local plugins not found (containernetworking-plugins)" >&2; exit 1; }

say "plugin, image, topology, podman configuration"
cargo build --quiet --bin egress-router
mkdir -p "$WORK/bin" "$WORK/net.d" "$WORK/tmp" "$WORK/rootfs/bin"
cp target/debug/egress-router "$WORK/bin/egress-router"
echo "plugin: target/debug/egress-router as $WORK/bin/egress-router"

cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for applet in $(busybox --list); do
    [[ $applet == busybox || $applet == *[!a-z0-9_.-]* ]] || ln -s busybox "$WORK/rootfs/bin/$applet"
done
mkdir -p "$WORK/rootfs/etc" "$WORK/rootfs/tmp" "$WORK/rootfs/proc" "$WORK/rootfs/sys" "$WORK/rootfs/dev"
echo 'root:x:0:0:root:/:/bin/sh' >"$WORK/rootfs/etc/passwd"
echo 'root:x:0:' >"$WORK/rootfs/etc/group"

bash tests/topology.sh up "$P" >/dev/null
echo "topology $P: node uplink0 198.51.100.2/24 -> gw 198.51.100.1 -> server 203.0.113.5-7"

cat >"$WORK/containers.conf" <<EOF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "cni"
network_config_dir = "$WORK/net.d"
cni_plugin_dirs = ["$WORK/bin"]
EOF
export CONTAINERS_CONF=$WORK/containers.conf

tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
echo "image $IMAGE: busybox $(busybox | head -1 | awk '{print $2}') and $(busybox --list | wc -l) applet links"

# conflist NAME PLUGIN-JSON: a network of the egress-router plugin, logging every command
conflist() {
    cat >"$WORK/net.d/$1.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "$1", "plugins": [
  {"type": "egress-router", "log_file": "$log", "log_level": "debug", $2}
]}
EOF
}
run() { # run NAME NETWORK [podman run options...]: a detached container, sleeping
    local name=$1 network=$2; shift 2
    podman run -d --name "$name" --network "$network:interface_name=net1" \
        --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@" "$IMAGE" sleep 300 >/dev/null
}
# run_failing NAME NETWORK: a podman run that must fail; its output (without podman's
# warnings) is shown and left in $out
run_failing() {
    local rc
    out=$(run "$1" "$2" 2>&1) && rc=0 || rc=$?
    echo "  podman run --name $1 --network $2: exit $rc"
    grep -v 'level=warning' <<<"$out" | sed 's/^/    /'
    check "podman run fails" test "$rc" -ne 0
}
inside() { podman exec "$@"; } # inside CONTAINER COMMAND...: run in the container
quiet() { "$@" >/dev/null; }
sandbox_of() { podman inspect --format '{{.NetworkSettings.SandboxKey}}' "$1"; }
in_ns() { local ns=$1; shift; nsenter --net="$ns" "$@"; } # in_ns PATH COMMAND...: the node's tools there
present() { # present PATTERN COMMAND...: COMMAND succeeds and prints a line matching PATTERN
    local pattern=$1 out; shift
    out=$("$@") || return 1
    grep -q -- "$pattern" <<<"$out" || { echo "  nothing matches '$pattern' in:"; sed 's/^/    /' <<<"$out"; return 1; }
}
absent() { # absent PATTERN COMMAND...: COMMAND succeeds and prints no line matching PATTERN
    local pattern=$1 out; shift
    out=$("$@") || return 1
    ! grep -q -- "$pattern" <<<"$out" || { echo "  left:"; grep -- "$pattern" <<<"$out" | sed 's/^/    /'; return 1; }
}
node_links() { ip -n "$N" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }
# podman's own namespaces (netns-UUID, or cni-UUID in older versions); other namespaces
# may come and go with other tests running on the machine
netns_list() { (shopt -s nullglob; cd /run/netns && printf '%s\n' netns-* cni-*) | sort; }
serve_peer() { # serve_peer ADDRESS PORT: the server answers each connection with the peer address it saw
    ip netns exec "$P-server" timeout 100 socat "TCP-LISTEN:$2,bind=$1,fork,reuseaddr" SYSTEM:'echo "$SOCAT_PEERADDR"' &
    disown
    sleep 0.2
}
seen_by_server() { # seen_by_server CONTAINER ADDRESS EXPECTED: what the server reports
    local got
    got=$(inside "$1" timeout 5 nc "$2" 80 </dev/null 2>&1 || true)
    echo "  $1 -> $2:80, the server saw: ${got:-nothing}"
    [[ $got == "$3" ]]
}
has_line() { # has_line TEXT PATTERN (extended regex, whole line)
    grep -Eqx -- "$2" <<<"$1" || { echo "  no line matching '$2' in:"; sed 's/^/    /' <<<"$1"; return 1; }
}
logged() { # logged COMMAND CONTAINER-ID: the plugin's log_file has COMMAND ... ok for it
    grep -q "egress-router $1 container=$2: ok" "$log" || { echo "  $log:"; sed 's/^/    /' "$log"; return 1; }
}
nothing_left() { # nothing_left: with no container left, the node is as it was before
    local ok=0
    [[ $(node_links) == "$links_before" ]] || { echo "  node links now: $(node_links | tr '\n' ' ')"; ok=1; }
    [[ $(netns_list) == "$netns_before" ]] || { echo "  podman namespaces now: $(netns_list | tr '\n' ' ')"; ok=1; }
    ! compgen -G "/var/lib/cni/results/$P-*" >/dev/null || { echo "  cached: $(ls /var/lib/cni/results/"$P"-*)"; ok=1; }
    return $ok
}

serve_peer 203.0.113.5 80
serve_peer 203.0.113.6 80
serve_peer 203.0.113.7 80
serve_peer 203.0.113.7 9090
links_before=$(node_links)
netns_before=$(netns_list)

say "one network: ip block, the container has only net1 and lo"
NET=$P-egress
conflist "$NET" '"ip": {"addresses": ["198.51.100.99/24"], "gateway": "198.51.100.1",
    "destinations": ["80 TCP 203.0.113.5/30", "8080 TCP 203.0.113.6 80", "203.0.113.7"]}'
check "podman run --network $NET:interface_name=net1 succeeds (plugin ADD)" run "$P-one" "$NET"
id=$(podman inspect --format '{{.Id}}' "$P-one")
sandbox=$(sandbox_of "$P-one")
echo "  container ${id:0:12}, network namespace $sandbox"
check "the plugin logged ADD ok for the container" logged ADD "$id"
links=$(inside "$P-one" ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
echo "  interfaces in the container: $links"
check "the container has exactly lo and net1" test "$links" = "lo net1 "
addresses=$(inside "$P-one" ip -o -4 addr show dev net1 | awk '{print $4}')
echo "  net1 addresses: $addresses"
check "net1 has the source address 198.51.100.99/24 and no other" test "$addresses" = 198.51.100.99/24
check "net1 is up" present net1 in_ns "$sandbox" ip -o link show dev net1 up
mac=$(inside "$P-one" cat /sys/class/net/net1/address)
recorded=$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}/{{.IPPrefixLen}} via {{.Gateway}} mac {{.MacAddress}}{{end}}' "$P-one")
echo "  podman recorded from the ADD result: $recorded"
check "podman read the result: address, prefix, gateway and net1's real MAC" \
    test "$recorded" = "198.51.100.99/24 via 198.51.100.1 mac $mac"
mac_one=$mac
routes=$(inside "$P-one" ip -4 route show)
echo "  routes in the container:"; sed 's/^/    /' <<<"$routes"
check "default route via the gateway 198.51.100.1 on net1" has_line "$routes" 'default via 198\.51\.100\.1 dev net1 .*'
check "the on-link route of 198.51.100.0/24 is on net1" has_line "$routes" '198\.51\.100\.0/24 dev net1 .*'
nat=$(in_ns "$sandbox" iptables-save -t nat)
echo "  NAT rules in the container's namespace:"; grep '^-A' <<<"$nat" | sed 's/^/    /'
check "NAT: SNAT of what leaves by net1 to 198.51.100.99 (chain EGRESS-ROUTER-SNAT)" \
    has_line "$nat" '-A EGRESS-ROUTER-SNAT -o net1 -j SNAT --to-source 198\.51\.100\.99'
check "NAT: DNAT of port 80 to 203.0.113.5 for what does not arrive on net1 (chain EGRESS-ROUTER-DNAT)" \
    has_line "$nat" '-A EGRESS-ROUTER-DNAT ! -i net1 -p tcp .*--dport 80 -j DNAT --to-destination 203\.0\.113\.5(:80)?'
check "traffic to 203.0.113.5 leaves from 198.51.100.99" seen_by_server "$P-one" 203.0.113.5 198.51.100.99
check "traffic to 203.0.113.7 leaves from 198.51.100.99" seen_by_server "$P-one" 203.0.113.7 198.51.100.99
check "no interface left on the node under the plugin's temporary name (egr...)" \
    absent ': egr' ip -n "$N" -o link show
count() { grep -c "egress-router $1 container=$id: ok" "$log" || true; }
before="$(count ADD) ADD, $(count DEL) DEL"
check "podman restart succeeds" quiet podman restart -t 0 "$P-one"
after="$(count ADD) ADD, $(count DEL) DEL"
echo "  plugin log for the container: $before before the restart, $after after"
check "the restart ran one DEL and one ADD" test "$before -> $after" = "1 ADD, 0 DEL -> 2 ADD, 1 DEL"
check "the namespace before the restart is gone" test ! -e "$sandbox"
sandbox=$(sandbox_of "$P-one")
check "after the restart, net1 has 198.51.100.99/24 again" present 'inet 198\.51\.100\.99/24' in_ns "$sandbox" ip -o -4 addr show dev net1
check "after the restart, traffic still leaves from 198.51.100.99" seen_by_server "$P-one" 203.0.113.5 198.51.100.99
mac_one=$(inside "$P-one" cat /sys/class/net/net1/address)
check "podman rm -f removes the container (plugin DEL)" quiet podman rm -f -t 0 "$P-one"
check "the plugin logged DEL ok for the container" logged DEL "$id"
check "podman's namespace $sandbox is gone" test ! -e "$sandbox"
check "nothing left: node links, network namespaces, CNI result cache" nothing_left

say "a cluster interface first, then the plugin (the order under Multus)"
# A bridge network on the node stands in for the cluster network: eth0 in 192.0.2.128/26
# with a default route via the node (192.0.2.129). `podman network connect` then runs
# the plugin's ADD on the running container, `podman network disconnect` its DEL.
# Clients connect from the topology's client namespace (192.0.2.10, another subnet,
# through the node): their replies need the reply routing, as the pod's default route
# has moved to the plugin's interface and the gateway has no route to 192.0.2.0/24.
CLUSTER=$P-cluster
cat >"$WORK/net.d/$CLUSTER.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "$CLUSTER", "plugins": [
  {"type": "bridge", "bridge": "br-$P", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$WORK/ipam",
            "ranges": [[{"subnet": "192.0.2.128/26", "gateway": "192.0.2.129"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}
]}
EOF
for plugin in bridge host-local; do ln -s "$CNI_PLUGINS/$plugin" "$WORK/bin/$plugin"; done
check "podman run --network $CLUSTER: eth0 with a default route via 192.0.2.129" \
    quiet podman run -d --name "$P-two" --network "$CLUSTER" --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 "$IMAGE" sleep 300
sandbox=$(sandbox_of "$P-two")
pod_ip=$(inside "$P-two" ip -o -4 addr show dev eth0 | awk '{print $4}')
pod_ip=${pod_ip%/*}
echo "  eth0: $pod_ip"
neighbour_before=$(ip -n "$P-gw" neigh show 198.51.100.99 dev lan0)
echo "  the gateway's entry for 198.51.100.99 (from the first container): $neighbour_before"
check "podman network connect $NET runs ADD (eth1)" podman network connect "$NET" "$P-two"
id=$(podman inspect --format '{{.Id}}' "$P-two")
check "the plugin logged ADD ok" logged ADD "$id"
mac=$(inside "$P-two" cat /sys/class/net/eth1/address)
neighbour=$(ip -n "$P-gw" neigh show 198.51.100.99 dev lan0)
echo "  eth1 $mac; the gateway's entry for 198.51.100.99, before any traffic: $neighbour"
check "gratuitous ARP: the gateway's entry for 198.51.100.99 went from the first container's MAC to eth1's" \
    test "$(awk '{print $3}' <<<"$neighbour_before") -> $(awk '{print $3}' <<<"$neighbour")" = "$mac_one -> $mac"
routes=$(inside "$P-two" ip -4 route show)
echo "  routes in the container:"; sed 's/^/    /' <<<"$routes"
check "default route via 198.51.100.1 on eth1" has_line "$routes" 'default via 198\.51\.100\.1 dev eth1 .*'
check "the cluster subnet stays on eth0" has_line "$routes" '192\.0\.2\.128/26 dev eth0 .*'
kept=$(in_ns "$sandbox" ip -4 route show table 4552)
echo "  reply table 4552: $kept"
check "the old default route is kept for replies in table 4552" has_line "$kept" 'default via 192\.0\.2\.129 dev eth0.*'
check "ip rule: marked replies look up table 4552" \
    present 'fwmark 0x400000/0x400000 lookup 4552' in_ns "$sandbox" ip rule show
redirected() { # redirected PORT EXPECTED: the client connects to the pod's eth0 address
    local got
    got=$(ip netns exec "$P-client" timeout 5 socat -T 3 - "TCP:$pod_ip:$1" </dev/null 2>/dev/null || true)
    echo "  client 192.0.2.10 -> $pod_ip:$1, the server saw: ${got:-nothing}"
    [[ $got == "$2" ]]
}
check "redirect: port 80 of the pod reaches 203.0.113.5:80 from 198.51.100.99" redirected 80 198.51.100.99
check "redirect: port 8080 of the pod reaches 203.0.113.6:80 from 198.51.100.99" redirected 8080 198.51.100.99
check "redirect: fallback, port 9090 reaches 203.0.113.7:9090 from 198.51.100.99" redirected 9090 198.51.100.99
check "traffic from the pod itself leaves from 198.51.100.99" seen_by_server "$P-two" 203.0.113.5 198.51.100.99
check "podman network disconnect $NET runs DEL" podman network disconnect "$NET" "$P-two"
check "the plugin logged DEL ok" logged DEL "$id"
routes=$(inside "$P-two" ip -4 route show)
echo "  routes in the container after DEL:"; sed 's/^/    /' <<<"$routes"
check "DEL put back the default route via 192.0.2.129 on eth0" has_line "$routes" 'default via 192\.0\.2\.129 dev eth0.*'
links=$(inside "$P-two" ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')
check "eth1 is gone, eth0 stays (interfaces: $links)" test "$links" = "eth0 lo "
check "no EGRESS-ROUTER chain or jump left in the pod (nat, mangle)" absent EGRESS-ROUTER in_ns "$sandbox" iptables-save
check "no reply rule left" absent 'lookup 4552' in_ns "$sandbox" ip rule show
check "table 4552 left empty" absent . in_ns "$sandbox" ip -4 route show table 4552
check "podman rm -f removes the container" quiet podman rm -f -t 0 "$P-two"
ip -n "$N" link del "br-$P" 2>/dev/null || true # the bridge plugin leaves its bridge
check "nothing left: node links, network namespaces, CNI result cache" nothing_left

say "a container that exits by itself: podman's cleanup runs DEL"
check "podman run (sleep 1) succeeds" quiet podman run -d --name "$P-short" --network "$NET:interface_name=net1" \
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$IMAGE" sleep 1
id=$(podman inspect --format '{{.Id}}' "$P-short")
deleted() { # deleted: DEL logged for $id within 10 s
    for _ in $(seq 100); do
        grep -q "egress-router DEL container=$id: ok" "$log" && return 0
        sleep 0.1
    done
    logged DEL "$id"
}
check "it exits 0" test "$(podman wait "$P-short")" = 0
check "the plugin logged DEL ok, from podman's cleanup after the exit" deleted
check "nothing left while the exited container is still listed" nothing_left
quiet podman rm "$P-short"

say "podIP: the address chosen by the container's name (K8S_POD_NAME)"
NET=$P-pods
conflist "$NET" "\"podIP\": {
    \"$P-alpha\": {\"addresses\": [\"198.51.100.97/24\"], \"gateway\": \"198.51.100.1\"},
    \"$P-beta\": {\"addresses\": [\"198.51.100.98/24\"], \"gateway\": \"198.51.100.1\"},
    \"$P-b*\": {\"addresses\": [\"198.51.100.96/24\"], \"gateway\": \"198.51.100.1\"}}"
declare -A started
for name in alpha beta bravo; do
    run "$P-$name" "$NET" &
    started[$name]=$!
done
for name in alpha beta bravo; do
    check "podman run --name $P-$name succeeds (the three started at once)" wait "${started[$name]}"
done
for pair in alpha:198.51.100.97 beta:198.51.100.98 bravo:198.51.100.96; do
    name=$P-${pair%%:*} want=${pair#*:}
    got=$(inside "$name" ip -o -4 addr show dev net1 | awk '{print $4}')
    echo "  $name: net1 $got"
    check "$name got $want/24" test "$got" = "$want/24"
    check "traffic from $name leaves from $want" seen_by_server "$name" 203.0.113.5 "$want"
done
ids=$(podman ps -q --no-trunc --filter "name=^$P-")
sandboxes=$(podman inspect --format '{{.NetworkSettings.SandboxKey}}' "$P-alpha" "$P-beta" "$P-bravo")
check "podman rm -f removes the three containers" quiet podman rm -f -t 0 "$P-alpha" "$P-beta" "$P-bravo"
for id in $ids; do check "DEL logged for ${id:0:12}" logged DEL "$id"; done
for sandbox in $sandboxes; do check "podman's namespace $sandbox is gone" test ! -e "$sandbox"; done
check "nothing left after the three teardowns" nothing_left

say "a failing ADD fails podman run and leaves nothing"
run_failing "$P-gamma" "$NET"
check "podman reports the plugin's message (no podIP entry matches)" \
    grep -q "no entry matches pod \"$P-gamma\"" <<<"$out"
check "nothing left after the failed ADD" nothing_left
quiet podman rm -f -t 0 "$P-gamma" || true

say "a failure after the interface moved into the pod: rolled back, podman run fails"
# `type` names the binary: egress-router-broken runs the plugin with an
# iptables-nft-restore first in PATH that fails, so ADD fails at its first step in the
# pod (the guard of net1), after creating the interface and moving it into the pod
mkdir -p "$WORK/fakebin"
printf '#!/bin/sh\ncat >/dev/null\nip -o link show dev net1 >>%s\necho "simulated failure" >&2\nexit 1\n' \
    "$WORK/at-failure" >"$WORK/fakebin/iptables-nft-restore"
printf '#!/bin/sh\nPATH=%s:$PATH exec %s "$@"\n' "$WORK/fakebin" "$WORK/bin/egress-router" >"$WORK/bin/egress-router-broken"
chmod +x "$WORK/fakebin/iptables-nft-restore" "$WORK/bin/egress-router-broken"
NET=$P-broken
cat >"$WORK/net.d/$NET.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "$NET", "plugins": [
  {"type": "egress-router-broken", "log_file": "$log", "log_level": "debug",
   "ip": {"addresses": ["198.51.100.95/24"], "gateway": "198.51.100.1", "destinations": ["203.0.113.7"]}}
]}
EOF
run_failing "$P-delta" "$NET"
check "podman reports the failed step and the rollback" \
    grep -q "iptables-nft-restore --noflush: .*simulated failure (changes rolled back)" <<<"$out"
echo "  in the pod when the restore failed: $(cat "$WORK/at-failure" 2>/dev/null)"
check "the failure came with net1 in the pod" grep -q ': net1[@:]' "$WORK/at-failure"
check "the plugin logged the failed ADD as an error" grep -q "ERROR egress-router ADD container=.*simulated failure" "$log"
check "nothing left after the rolled-back ADD" nothing_left
quiet podman rm -f -t 0 "$P-delta" || true

say "routed: a veth pair the node routes, proxyArp on the egress LAN (interfaceType routed)"
# The egress LAN learns the source only by ARP: the node answers for it on uplink0
# (proxyArp), routes it to the pod's veth and sends what comes from it via the
# gateway (a rule and a table of its own), exempt from any masquerade.
NET=$P-routed
conflist "$NET" '"interfaceType": "routed", "interfaceArgs": {"proxyArp": true},
    "ip": {"addresses": ["198.51.100.97/24"], "gateway": "198.51.100.1"}'
check "podman run --network $NET:interface_name=net1 succeeds (plugin ADD, routed)" run "$P-routed" "$NET"
id=$(podman inspect --format '{{.Id}}' "$P-routed")
sandbox=$(sandbox_of "$P-routed")
check "the plugin logged ADD ok" logged ADD "$id"
check "net1 is the pod end of a veth pair" present 'veth' in_ns "$sandbox" ip -d -o link show dev net1
check "net1 has 198.51.100.97/24" present 'inet 198\.51\.100\.97/24' in_ns "$sandbox" ip -o -4 addr show dev net1
routes=$(inside "$P-routed" ip -4 route show)
echo "  routes in the container:"; sed 's/^/    /' <<<"$routes"
check "default route via 198.51.100.1 on net1" has_line "$routes" 'default via 198\.51\.100\.1 dev net1 .*'
check "no on-link route of 198.51.100.0/24: everything goes via the gateway" absent '^198\.51\.100\.0/24' echo "$routes"
node_end=$(ip -n "$N" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^egv' || true)
echo "  the node end: ${node_end:-none}"
check "the node end egv... is on the node" test -n "$node_end"
check "the node routes 198.51.100.97 to it" present "198\.51\.100\.97 dev $node_end" ip -n "$N" route show
check "a rule sends 198.51.100.97 to a table of its own" present 'from 198\.51\.100\.97 lookup 4553' ip -n "$N" rule
check "the node answers ARP for 198.51.100.97 on uplink0" present '198\.51\.100\.97 dev uplink0' ip -n "$N" neigh show proxy
check "traffic to 203.0.113.5 leaves from 198.51.100.97" seen_by_server "$P-routed" 203.0.113.5 198.51.100.97
check "podman rm -f removes the container (plugin DEL)" quiet podman rm -f -t 0 "$P-routed"
check "the plugin logged DEL ok" logged DEL "$id"
check "no rule of the plugin left on the node" absent '198\.51\.100\.97' ip -n "$N" rule
check "no proxy entry left on the node" absent '198\.51\.100\.97' ip -n "$N" neigh show proxy
check "no nat chain of the plugin left on the node" absent 'EGRESS-ROUTER' in_ns "/run/netns/$N" iptables-save -t nat
check "nothing left after the routed container" nothing_left

say "Kubernetes manifests (examples/kubernetes/cni/)"
# kubernetes-validate knows the built-in kinds; it has no schema for Multus's
# NetworkAttachmentDefinition (a CRD: it only warns and exits 0), so those are checked
# here: their shape, and their `config` read by the plugin itself (STATUS parses and
# validates a configuration and touches nothing)
validator=kubernetes-validate python=python3
if ! command -v "$validator" >/dev/null || ! python3 -c 'import yaml' 2>/dev/null; then
    [[ -x $ROOT/target/kv-venv/bin/kubernetes-validate ]] || {
        python3 -m venv "$ROOT/target/kv-venv" >/dev/null
        "$ROOT/target/kv-venv/bin/pip" install --quiet kubernetes-validate
    }
    validator=$ROOT/target/kv-venv/bin/kubernetes-validate python=$ROOT/target/kv-venv/bin/python3
fi
cat >"$WORK/manifests.py" <<'PY'
"""nad FILE PLUGIN: one NetworkAttachmentDefinition of the egress-router plugin, its
config accepted by the plugin; refs FILE...: every network a pod template names is an
example NAD, and a StatefulSet on a podIP network has an entry for each of its pods."""
import json, os, re, subprocess, sys
import yaml

def fail(why):
    print(f"  {why}")
    sys.exit(1)

def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]

def nad(path, plugin):
    found = docs(path)
    if len(found) != 1:
        fail(f"{len(found)} documents, expected one NetworkAttachmentDefinition")
    d = found[0]
    if (d.get("apiVersion"), d.get("kind")) != ("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"):
        fail(f"apiVersion/kind {d.get('apiVersion')}/{d.get('kind')}")
    meta, spec = d.get("metadata") or {}, d.get("spec") or {}
    name = meta.get("name", "")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name) or len(name) > 253:
        fail(f"metadata.name {name!r} is not a DNS subdomain name")
    if set(d) - {"apiVersion", "kind", "metadata", "spec"} or set(spec) != {"config"}:
        fail(f"unexpected fields: {sorted(set(d) | set(spec))}")
    config = json.loads(spec["config"])
    want = {"type": "egress-router", "cniVersion": "0.4.0", "name": name}
    got = {k: config.get(k) for k in want}
    if got != want:
        fail(f"config has {got}, expected {want}")
    config["cniVersion"] = "1.1.0"  # STATUS belongs to 1.1.0; the rest is read the same
    run = subprocess.run([plugin], input=json.dumps(config).encode(), capture_output=True,
                         env={"CNI_COMMAND": "STATUS", "PATH": os.environ["PATH"]})
    if run.returncode != 0:
        fail(f"the plugin refuses the config: {run.stdout.decode().strip()}")

def refs(paths):
    nads, templates = {}, []
    for path in paths:
        for d in docs(path):
            if d.get("kind") == "NetworkAttachmentDefinition":
                nads[d["metadata"]["name"]] = json.loads(d["spec"]["config"])
            elif d.get("kind") in ("Deployment", "StatefulSet", "Pod"):
                templates.append(d)
    for d in templates:
        pod = d if d["kind"] == "Pod" else d["spec"]["template"]
        annotation = (pod["metadata"].get("annotations") or {}).get("k8s.v1.cni.cncf.io/networks")
        if not annotation:
            fail(f"{d['kind']} {d['metadata']['name']} attaches no network")
        for network in annotation.split(","):
            network = network.strip().split("@")[0].split("/")[-1]
            if network not in nads:
                fail(f"{d['kind']} {d['metadata']['name']} names network {network!r}, not an example")
            pods = nads[network].get("podIP")
            if pods and d["kind"] == "StatefulSet":
                for i in range(d["spec"].get("replicas", 1)):
                    if f"{d['metadata']['name']}-{i}" not in pods:
                        fail(f"no podIP entry for pod {d['metadata']['name']}-{i}")
            print(f"  {d['kind']} {d['metadata']['name']} -> {network}")

{"nad": lambda: nad(sys.argv[2], sys.argv[3]), "refs": lambda: refs(sys.argv[2:])}[sys.argv[1]]()
PY
manifests=(examples/kubernetes/cni/*.yaml)
for manifest in "${manifests[@]}"; do
    if grep -q '^kind: NetworkAttachmentDefinition' "$manifest"; then
        check "$manifest: a NetworkAttachmentDefinition whose config the plugin accepts (no schema for the CRD)" \
            "$python" "$WORK/manifests.py" nad "$manifest" "$ROOT/target/debug/egress-router"
    else
        check "$manifest is valid (kubernetes-validate, strict, offline schemas)" "$validator" --strict --quiet "$manifest"
    fi
done
check "every network the pods name is one of the examples, with a podIP entry for each StatefulSet pod" \
    "$python" "$WORK/manifests.py" refs "${manifests[@]}"

echo
echo "cni: $passed passed, $failed failed"
((failed == 0))
