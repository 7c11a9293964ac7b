#!/usr/bin/env bash
# Writes prometheusrule.yaml, the Prometheus Operator's PrometheusRule, from rules.yaml,
# the plain Prometheus rule file beside it: rules.yaml is the one source of the alerts.
# Its groups become the PrometheusRule's spec, unchanged (indented; the file's own
# header comment left out). Run after every change of rules.yaml:
#
#   bash examples/kubernetes/monitoring/generate.sh       # writes prometheusrule.yaml
#   bash examples/kubernetes/monitoring/generate.sh -     # prints it instead
#
# The test suite (tests/monitoring_rules.rs) fails when prometheusrule.yaml is not what
# this script writes.
set -euo pipefail
cd "$(dirname "$0")"

render() {
    cat <<'HEADER'
# GENERATED from rules.yaml by generate.sh: edit rules.yaml, then run
# `bash examples/kubernetes/monitoring/generate.sh`.
#
# The egress-router alerts for the Prometheus Operator (its PrometheusRule CRD must be
# installed): apply in the routers' namespace or wherever your Prometheus selects rules
# from. A Prometheus that selects PrometheusRules by label (kube-prometheus-stack:
# `release: NAME`) needs that label added under metadata.labels. Each alert's runbook
# is its section of docs/monitoring.md.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: egress-router
  labels:
    app.kubernetes.io/name: egress-router
spec:
HEADER
    sed -e '/^#/d' -e 's/^./  &/' rules.yaml
}

if [[ ${1:-} == - ]]; then
    render
else
    render >prometheusrule.yaml
fi
