use super::*;

fn settings(pairs: &[(&str, &str)]) -> Result<LogSettings> {
    LogSettings::from_vars(&Vars::from_pairs(pairs.iter().copied()))
}

#[test]
fn text_and_this_crate_at_info_by_default() {
    let s = settings(&[]).unwrap();
    assert_eq!(s.format, LogFormat::Text);
    assert_eq!(s.filter, "warn,egress_router=info");
}

#[test]
fn the_debug_variables_raise_this_crate_only() {
    for var in ["EGRESS_ROUTER_DEBUG", "EGRESS_DNS_PROXY_DEBUG"] {
        let s = settings(&[(var, "1")]).unwrap();
        assert_eq!(s.filter, "warn,egress_router=debug", "{var}");
    }
}

#[test]
fn rust_log_replaces_the_filter() {
    let s = settings(&[("RUST_LOG", "hyper=trace"), ("EGRESS_ROUTER_DEBUG", "1")]).unwrap();
    assert_eq!(s.filter, "hyper=trace");
}

#[test]
fn the_format_is_text_or_json_in_any_case() {
    assert_eq!(
        settings(&[("EGRESS_LOG_FORMAT", "json")]).unwrap().format,
        LogFormat::Json
    );
    assert_eq!(
        settings(&[("EGRESS_LOG_FORMAT", " JSON ")]).unwrap().format,
        LogFormat::Json
    );
    assert_eq!(
        settings(&[("EGRESS_LOG_FORMAT", "Text")]).unwrap().format,
        LogFormat::Text
    );
}

#[test]
fn bad_values_name_the_variable_and_the_value() {
    let e = settings(&[("EGRESS_LOG_FORMAT", "yaml")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("EGRESS_LOG_FORMAT: ") && e.contains("\"yaml\""),
        "{e}"
    );
    let e = settings(&[("RUST_LOG", "egress_router=loud")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("RUST_LOG: ") && e.contains("egress_router=loud"),
        "{e}"
    );
}
