#!/usr/bin/env bash
# Benchmark: failover of egress-router's VRRP against keepalived's, side by side in the
# same topology (two router pods on one LAN, 100 ms adverts, equal priorities): from
# SIGKILL, link down and SIGTERM of the master to the first new TCP connection through
# the new master, SIGKILL to the source on the new master ("direct"), and a healed
# partition to one master. Medians of RUNS runs (default 10).
#
#   sudo bash benches/ha-failover.sh            # RUNS=20 sudo -E bash benches/ha-failover.sh
#
# The measurement is benches/ha_failover.rs (a test target the harness's topology
# builds); keepalived comes from Debian's package.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
    echo "run as root: the benchmark creates network namespaces" >&2
    exit 1
fi
RUNS=${RUNS:-10}
if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 1 || RUNS > 100)); then
    echo "RUNS must be 1..100" >&2
    exit 2
fi
if ! command -v keepalived >/dev/null || ! command -v nft >/dev/null; then
    # shellcheck source=tests/apt.sh
    source tests/apt.sh
    apt_install keepalived nftables
fi
export RUNS
cargo test -q --test ha_failover -- --ignored --nocapture --test-threads 1
