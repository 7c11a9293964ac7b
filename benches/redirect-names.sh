#!/usr/bin/env bash
# Benchmark: a name target through egress-router's redirect (the kernel's NAT, kept in
# step with DNS) against hand-written static DNAT, the direct path, the DNS proxy and
# haproxy. The names part of benches/compare.sh:
#
#   sudo bash benches/redirect-names.sh [--pinned] [--reps N]
set -euo pipefail
exec bash "$(dirname "$0")/compare.sh" --only names "$@"
