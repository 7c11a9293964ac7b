#!/usr/bin/env bash
# Benchmark: the egress-router HTTP proxy vs squid (what the origin-egress-http-proxy
# image runs). The HTTP half of benches/compare.sh:
#
#   sudo bash benches/http-proxy-vs-squid.sh [--pinned] [--reps N]
set -euo pipefail
exec bash "$(dirname "$0")/compare.sh" --only http "$@"
