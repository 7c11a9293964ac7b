#!/usr/bin/env bash
# Benchmark: the egress-router DNS proxy (a TCP forwarder) vs haproxy (what the
# origin-egress-dns-proxy image runs). The DNS half of benches/compare.sh:
#
#   sudo bash benches/dns-proxy-vs-haproxy.sh [--pinned] [--reps N]
set -euo pipefail
exec bash "$(dirname "$0")/compare.sh" --only dns "$@"
