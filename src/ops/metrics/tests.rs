use prometheus_client::encoding::prometheus_text;

use super::*;

#[test]
fn encodes_the_names_and_labels_of_the_contract() {
    let metrics = Metrics::default();
    metrics.decided(HTTP_PROXY, 8080, true, "*.example.com".to_string());
    metrics.decided(HTTP_PROXY, 8080, true, "*.example.com".to_string());
    metrics.decided(DNS_PROXY, 5432, false, "connection-limit");
    drop(metrics.open(DNS_PROXY, 5432));
    let _open = metrics.open(HTTP_PROXY, 8080);
    metrics.transferred(HTTP_PROXY, 10, 0);
    metrics.connected(DNS_PROXY, Duration::from_millis(2));
    metrics.upstream_failed(HTTP_PROXY, UpstreamError::Refused);
    metrics.would_deny(HTTP_PROXY, "no-rule");
    metrics.resolved("db.example.com", false);
    metrics.reloaded(DNS_PROXY, Reload::Invalid);
    metrics.connection_cap(HTTP_PROXY, 4000);
    let mut registry = Registry::with_prefix("egress_router");
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"egress_router_connections_total{role="http-proxy",listener="8080",decision="allowed",reason="*.example.com"} 2"#,
        r#"egress_router_connections_total{role="dns-proxy",listener="5432",decision="denied",reason="connection-limit"} 1"#,
        r#"egress_router_connections_active{role="dns-proxy",listener="5432"} 0"#,
        r#"egress_router_connections_active{role="http-proxy",listener="8080"} 1"#,
        r#"egress_router_connection_duration_seconds_count{role="dns-proxy"} 1"#,
        r#"egress_router_bytes_total{role="http-proxy",direction="up"} 10"#,
        r#"egress_router_upstream_connect_seconds_count{role="dns-proxy"} 1"#,
        r#"egress_router_upstream_errors_total{role="http-proxy",kind="refused"} 1"#,
        r#"egress_router_report_would_deny_total{role="http-proxy",reason="no-rule"} 1"#,
        r#"egress_router_resolution_failures_total{target="db.example.com"} 1"#,
        r#"egress_router_list_reloads_total{role="dns-proxy",result="invalid"} 1"#,
        r#"egress_router_connections_max{role="http-proxy"} 4000"#,
        "# TYPE egress_router_setup_healthy gauge",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(
        !text.contains(r#"direction="down""#),
        "no series for bytes never relayed:\n{text}"
    );
}

/// The text `metrics` encode to.
fn encoded(metrics: &Metrics) -> String {
    let mut registry = Registry::with_prefix("egress_router");
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry).unwrap();
    text
}

#[test]
fn a_serving_proxy_has_its_cap_and_the_alerted_series_at_zero() {
    let metrics = Metrics::default();
    metrics.http_proxy_serving(8080, 4000, true);
    drop(metrics.listener(DNS_PROXY, 5432));
    metrics.connection_cap(DNS_PROXY, 100);
    let text = encoded(&metrics);
    for line in [
        r#"egress_router_connections_max{role="http-proxy"} 4000"#,
        r#"egress_router_connections_max{role="dns-proxy"} 100"#,
        r#"egress_router_connections_total{role="http-proxy",listener="8080",decision="denied",reason="connection-limit"} 0"#,
        r#"egress_router_connections_total{role="dns-proxy",listener="5432",decision="denied",reason="connection-limit"} 0"#,
        r#"egress_router_upstream_errors_total{role="http-proxy",kind="refused"} 0"#,
        r#"egress_router_upstream_errors_total{role="http-proxy",kind="timeout"} 0"#,
        r#"egress_router_upstream_errors_total{role="http-proxy",kind="resolve"} 0"#,
        r#"egress_router_upstream_errors_total{role="http-proxy",kind="other"} 0"#,
        r#"egress_router_tls_sni_cuts_total{role="http-proxy",reason="server-name"} 0"#,
        r#"egress_router_tls_sni_cuts_total{role="http-proxy",reason="tls"} 0"#,
        r#"egress_router_report_would_deny_total{role="http-proxy",reason="default"} 0"#,
        r#"egress_router_report_would_deny_total{role="http-proxy",reason="tls-server-name"} 0"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    let enforcing = Metrics::default();
    enforcing.http_proxy_serving(8080, 4000, false);
    assert!(
        !encoded(&enforcing).contains("report_would_deny_total{"),
        "no report-mode series when the list is enforced"
    );
}
