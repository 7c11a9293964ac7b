#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then format, lint, unit and
# root integration tests, the container image test (tests/container.sh), the CNI plugin
# under podman (tests/cni_podman.sh) and the README's demo (examples/demo.sh). Run as root on Debian/Ubuntu: `sudo bash tests/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/run.sh: the integration tests create network namespaces and must run as root" >&2
    exit 1
fi

# dnsmasq-base: the DNS server of the proxy tests; bind9-dnsutils: dig, the client that
# queries the DNS proxy's answers (squid and haproxy, for the benchmarks only, are
# installed by benches/http-proxy-vs-squid.sh and benches/dns-proxy-vs-haproxy.sh);
# busybox-static: the only binary of the CNI test's container image;
# containernetworking-plugins: bridge and host-local, the CNI test's cluster network;
# keepalived: the VRRP peer of the high-availability tests; nftables: their partitions
# of the egress LAN (VRRP dropped on its bridge), and the cloud of the routed CNI tests
# (tests/common/cloud/)
packages=(iproute2 iptables socat tcpdump iputils-arping procps dnsmasq-base bind9-dnsutils openssl
    podman runc debootstrap python3-venv busybox-static containernetworking-plugins keepalived nftables)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# shellcheck source=tests/apt.sh
source tests/apt.sh
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
fi
# prometheus: promtool and the server of the monitoring tests (tests/monitoring_rules.rs,
# tests/monitoring_prometheus.rs, tests/monitoring_ha.rs), without the node exporter it recommends; apt_install
# starts neither (the tests run their own server, in a namespace, and stop it)
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q "install ok installed"; then
    apt_install --no-install-recommends prometheus
fi
command -v cargo >/dev/null || { echo "tests/run.sh: cargo not found; install Rust (rustup.rs)" >&2; exit 1; }

# The EC2 API of the routed CNI tests (tests/cloud/ec2.py): moto's server, pinned, in a
# virtual environment under target/ (the tests fail, naming it, when it is missing)
MOTO=moto[server]==5.2.5
if ! target/moto-venv/bin/python -c 'import moto, sys; sys.exit(moto.__version__ != "5.2.5")' 2>/dev/null; then
    echo "installing $MOTO into target/moto-venv"
    mkdir -p target
    python3 -m venv target/moto-venv
    target/moto-venv/bin/pip install --quiet "$MOTO"
fi

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --quiet
bash tests/container.sh
bash tests/cni_podman.sh
bash examples/demo.sh
