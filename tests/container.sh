#!/usr/bin/env bash
# Container test: builds the image with podman from a local Debian base (no registry is
# reachable), runs it in the test topology (tests/topology.sh) the way a pod runs it,
# and validates the Kubernetes manifests offline. Run as root: `bash tests/container.sh`.
#
# - base image: a debootstrap root filesystem (gcc, libc6-dev, iptables) imported as
#   localhost/egress-router-base:bookworm, built once and reused
# - build: the Containerfile with that base for both stages; the host's Rust toolchain
#   and crate cache are mounted into the build stage (overlay, nothing written back)
# - runs: init then redirect, init then HTTP proxy, each with traffic checked end to
#   end, `check` as probe, and `podman stop` giving exit 0 within a second
# - podman settings (runc, cgroupfs, file events, ulimits) come from a containers.conf
#   this script writes; the machine's global configuration is not touched, and no
#   container uses podman's default network (they join the test's namespaces)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
ROOT=$PWD

BASE=localhost/egress-router-base:bookworm
IMAGE=localhost/egress-router:test
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
P=ct$$
WORK=$(mktemp -d)
# shellcheck source=tests/checks.sh
source "$ROOT/tests/checks.sh"

cleanup() {
    podman ps -a --filter "label=egress-router-test=$P" -q 2>/dev/null | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
    for t in "$P"a "$P"b; do bash "$ROOT/tests/topology.sh" down "$t"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ $EUID -ne 0 ]]; then
    echo "tests/container.sh: needs root (network namespaces, podman)" >&2
    exit 1
fi

# podman configuration for this run only
# ulimits no higher than this machine's hard limits (podman's defaults may be higher)
limit() { local hard; hard=$(ulimit "-H$1"); [[ $hard == unlimited ]] && hard=$2; echo $((hard < $2 ? hard : $2)); }
# (nproc also no higher than kernel.pid_max: this machine refuses more)
nofile=$(limit n 65536) nproc=$(limit u "$(cat /proc/sys/kernel/pid_max)")
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$WORK/containers.conf
# podman 4.3 does not apply default_ulimits to rootful runs (it sets nproc and nofile
# above this machine's hard limits, which runc then fails to set), so every run also
# names them
podman() {
    if [[ $1 == run ]]; then
        shift
        command podman run --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$@"
    else
        command podman "$@"
    fi
}
export -f podman
export nofile nproc

say "base image $BASE"
if podman image exists "$BASE"; then
    echo "reusing $BASE"
else
    debootstrap --variant=minbase --include=gcc,libc6-dev,iptables,ca-certificates \
        bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    rm -rf "$WORK/rootfs/var/cache/apt/archives"/*.deb "$WORK/rootfs/var/lib/apt/lists"/*
    tar -C "$WORK/rootfs" -c . | podman import - "$BASE" >/dev/null
    rm -rf "$WORK/rootfs"
fi

say "building $IMAGE"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo fetch --locked --quiet # the crates the offline build stage needs, into the mounted cache
build_started=$(date +%s)
podman build --network none --pull=never \
    --build-arg BUILDER="$BASE" --build-arg TOOLS="$BASE" \
    -v "$cargo_home:/usr/local/cargo:O" -v "$rustup_home:/usr/local/rustup:ro" \
    --env CARGO_NET_OFFLINE=true \
    -t "$IMAGE" -f Containerfile . >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log" >&2; exit 1; }
echo "built in $(($(date +%s) - build_started)) s"
for role in router http-proxy dns-proxy; do
    podman build --network none --pull=never --build-arg BASE="$IMAGE" \
        -t "localhost/egress-router-$role:test" "images/$role" >>"$WORK/build.log" 2>&1
done
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image size: $size bytes ($((size / 1024)) KiB)"

say "image contents"
check "runs as non-root by default" test "$(podman image inspect --format '{{.Config.User}}' "$IMAGE")" = 65532:65532
check "router variant runs as root" test "$(podman image inspect --format '{{.Config.User}}' localhost/egress-router-router:test)" = 0:0
check "http-proxy variant runs as non-root" test "$(podman image inspect --format '{{.Config.User}}' localhost/egress-router-http-proxy:test)" = 65532:65532
check "--help works in the image" bash -c "podman run --rm --network none '$IMAGE' --help | grep -q redirect"
check "backend-specific iptables tools work in the image" bash -c \
    "podman run --rm --network none --user 0 --cap-add NET_ADMIN --entrypoint /usr/sbin/iptables-nft-save '$IMAGE' >/dev/null \
     && podman run --rm --network none --user 0 --cap-add NET_ADMIN --entrypoint /usr/sbin/iptables-legacy-save '$IMAGE' >/dev/null"
check "the IPv6 tools work in the image, with the NAT targets" bash -c \
    "podman run --rm --network none --user 0 --cap-add NET_ADMIN --entrypoint /usr/sbin/ip6tables-nft '$IMAGE' \
         -t nat -A POSTROUTING -j SNAT --to-source 2001:db8:1::99 \
     && podman run --rm --network none --user 0 --cap-add NET_ADMIN --entrypoint /usr/sbin/ip6tables-legacy-save '$IMAGE' >/dev/null"
# every match and target the setup's rules use (the guard's ICMP matches, the name
# entries' statistic, mark, MARK and REJECT) loads in the image, in each family
extension_loads() { # TOOL ARGS...: `TOOL ARGS... -h` in the image
    local tool=$1; shift
    podman run --rm --network none --user 0 --entrypoint "/usr/sbin/$tool" "$IMAGE" "$@" -h >/dev/null 2>&1
}
for spec in "-p icmp -m icmp" "-m statistic" "-m mark" "-j MARK" "-j REJECT" "-m conntrack" "-j CONNMARK"; do
    # shellcheck disable=SC2086
    check "iptables extension loads in the image: $spec" extension_loads iptables-nft $spec
done
for spec in "-p ipv6-icmp -m icmp6" "-m statistic" "-m mark" "-j REJECT"; do
    # shellcheck disable=SC2086
    check "ip6tables extension loads in the image: $spec" extension_loads ip6tables-nft $spec
done
check "bad input: one error line, exit 2" bash -c \
    "out=\$(podman run --rm --network none -e EGRESS_SOURCE=198.51.100.300 '$IMAGE' 2>&1); rc=\$?; \
     [[ \$rc -eq 2 && \$out == *'EGRESS_SOURCE'*'198.51.100.300'* ]]"

# run NAME [podman run options...] -- [args...]: a detached container in the test's namespaces
run_detached() {
    local name=$1; shift
    podman run -d --name "$name" --label "egress-router-test=$P" "$@" >/dev/null
}
wait_log() { # wait_log CONTAINER TEXT: up to 5 s
    for _ in $(seq 50); do
        podman logs "$1" 2>&1 | grep -q "$2" && return 0
        sleep 0.1
    done
    podman logs "$1" >&2 || true
    return 1
}
stops_cleanly() { # stops_cleanly CONTAINER: `podman stop` returns within a second, exit code 0
    local t0 t1 code
    t0=$(date +%s%N)
    podman stop -t 5 "$1" >/dev/null
    t1=$(date +%s%N)
    code=$(podman inspect --format '{{.State.ExitCode}}' "$1")
    echo "  $1 stopped in $(((t1 - t0) / 1000000)) ms, exit code $code"
    [[ $code -eq 0 && $((t1 - t0)) -lt 1000000000 ]]
}
server_saw() { # server_saw TOPOLOGY PORT EXPECTED: client connects to the router's PORT, checks the reply
    local got
    got=$(ip netns exec "$1-client" timeout 5 socat -T 3 - "TCP:192.0.2.70:$2" </dev/null 2>/dev/null || true)
    [[ $got == "$3" ]] || { echo "  got: '$got', want: '$3'"; return 1; }
}
serve_source() { # serve_source TOPOLOGY PORT: the server answers with the source address it saw
    ip netns exec "$1-server" timeout 60 socat "TCP-LISTEN:$2,fork,reuseaddr" SYSTEM:'echo "$SOCAT_PEERADDR"' &
    disown
    sleep 0.2
}
router_env=(-e EGRESS_SOURCE=198.51.100.99 -e EGRESS_GATEWAY=198.51.100.1)

say "init + redirect, as in a pod"
T="$P"a
bash tests/topology.sh up "$T" >/dev/null
serve_source "$T" 80
destination=$'80 tcp 203.0.113.5\n203.0.113.7'
check "init container (privileged) sets up and exits 0" \
    podman run --rm --privileged --user 0 --network "ns:/run/netns/$T-router" \
    "${router_env[@]}" -e EGRESS_DESTINATION="$destination" "$IMAGE" router --mode init
run_detached "$P-redirect" --user 0 --cap-drop ALL --cap-add NET_ADMIN --read-only \
    --network "ns:/run/netns/$T-router" "${router_env[@]}" -e EGRESS_DESTINATION="$destination" \
    "$IMAGE" redirect
check "redirect container verifies the setup" wait_log "$P-redirect" "setup verified"
check "traffic leaves from EGRESS_SOURCE" server_saw "$T" 80 198.51.100.99
check "check probe passes" podman exec "$P-redirect" /usr/local/bin/egress-router check
check "podman stop: exit 0 within a second" stops_cleanly "$P-redirect"

say "init + HTTP proxy, as in a pod"
T="$P"b
bash tests/topology.sh up "$T" >/dev/null
serve_source "$T" 80
check "init container (http-proxy mode) exits 0" \
    podman run --rm --privileged --user 0 --network "ns:/run/netns/$T-router" \
    "${router_env[@]}" "$IMAGE" router --mode http-proxy
run_detached "$P-proxy" --cap-drop ALL --read-only --network "ns:/run/netns/$T-router" \
    -e EGRESS_HTTP_PROXY_DESTINATION=203.0.113.5 "$IMAGE" http-proxy
check "proxy listens, unprivileged" wait_log "$P-proxy" "http proxy listening"
proxy_pid=$(podman inspect --format '{{.State.Pid}}' "$P-proxy")
check "proxy runs as uid 65532" test "$(awk '/^Uid:/ {print $2}' "/proc/$proxy_pid/status")" = 65532
check "proxy has no capabilities" test "$(awk '/^CapEff:/ {print $2}' "/proc/$proxy_pid/status")" = 0000000000000000
tunnel() {
    printf 'CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' "$1" "$1" |
        ip netns exec "$T-client" timeout 5 socat -T 3 - TCP:192.0.2.70:8080 2>/dev/null | tr -d '\r'
}
export -f tunnel; export T
check "CONNECT allowed, server sees EGRESS_SOURCE" bash -c "[[ \"\$(tunnel 203.0.113.5:80 | tail -1)\" == 198.51.100.99 ]]"
check "CONNECT to an address not in the list: 403" bash -c "tunnel 203.0.113.6:80 | head -1 | grep -q ' 403 '"
check "health endpoint answers 200" bash -c \
    "printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' | ip netns exec '$T-client' timeout 5 socat -T 2 - TCP:192.0.2.70:8080 | head -1 | grep -q ' 200 '"
http_get() { # ADDRESS:PORT PATH: the answer, from the client namespace
    printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$2" |
        ip netns exec "$T-client" timeout 5 socat -T 2 - "TCP:$1" 2>/dev/null | tr -d '\r'
}
export -f http_get
check "readiness endpoint: 200 ready" bash -c "http_get 192.0.2.70:9090 /readyz | tail -1 | grep -qx ready"
check "metrics count the allowed and the denied CONNECT" bash -c \
    "m=\$(http_get 192.0.2.70:9090 /metrics); grep -q 'decision=\"allowed\",reason=\"203.0.113.5\"} 1\$' <<<\"\$m\" && grep -q 'decision=\"denied\",reason=\"default\"} 1\$' <<<\"\$m\""
check "podman stop: exit 0 within a second" stops_cleanly "$P-proxy"

say "Kubernetes manifests"
validator=kubernetes-validate
if ! command -v "$validator" >/dev/null; then
    python3 -m venv "$ROOT/target/kv-venv" >/dev/null
    "$ROOT/target/kv-venv/bin/pip" install --quiet kubernetes-validate
    validator=$ROOT/target/kv-venv/bin/kubernetes-validate
fi
# A custom resource (the ServiceMonitor, the PrometheusRule) has no offline schema: the
# validator only warns that it skips it. monitoring/rules.yaml is no manifest but the
# Prometheus rule file the PrometheusRule is generated from: tests/monitoring_rules.rs
# checks both with promtool.
for manifest in examples/kubernetes/*.yaml examples/kubernetes/monitoring/*.yaml; do
    [[ $manifest == */monitoring/rules.yaml ]] && continue
    check "$manifest is valid (strict, offline schemas)" "$validator" --strict --quiet "$manifest"
done

echo
echo "container: $passed passed, $failed failed"
((failed == 0))
