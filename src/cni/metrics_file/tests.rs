use super::*;

fn refusal(text: &str) -> String {
    let error = MetricsFile::parse(text).unwrap_err();
    assert_eq!(crate::cni::code::of(&error), 7, "{error}");
    let shown = error.to_string();
    assert!(shown.contains("metrics_file"), "{shown}");
    shown
}

#[test]
fn only_the_one_file_is_taken() {
    let file = MetricsFile::parse(METRICS_FILE).unwrap();
    assert_eq!(file.path(), Path::new(METRICS_FILE));
    assert_eq!(Path::new(METRICS_DIR).join(file.name()), file.path());
    for text in [
        "/etc/cron.d/x.prom".to_string(),
        format!("{METRICS_DIR}/smartmon.prom"),
        format!("{METRICS_DIR}/../../../etc/egress-router.prom"),
        format!("{METRICS_DIR}/sub/egress-router.prom"),
        format!("{METRICS_DIR}//egress-router.prom"),
        format!("{METRICS_FILE}/"),
        format!("{METRICS_FILE}\0"),
        "egress-router.prom".to_string(),
    ] {
        assert!(refusal(&text).contains(METRICS_FILE), "{text}");
    }
}

#[test]
fn counts_survive_the_file_and_only_grow() {
    let add_ok = Series::new("egress", "ADD", "aws-elastic-ip", None);
    let add_failed = Series::new("egress", "ADD", "aws-elastic-ip", Some(7));
    let mut counts = Counts::default();
    counts.count(add_ok.clone());
    counts.count(add_failed.clone());
    counts.count(add_failed.clone());
    let text = counts.render();
    assert!(
        text.contains(&format!("# TYPE {COMMANDS} counter\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{COMMANDS}{{network=\"egress\",command=\"ADD\",interface_type=\"aws-elastic-ip\",result=\"7\"}} 2\n"
        )),
        "{text}"
    );
    let mut again = Counts::read(&text);
    assert_eq!(again, counts);
    again.count(add_ok.clone());
    assert_eq!(again.get(&add_ok), Some(2));
    assert_eq!(again.get(&add_failed), Some(2));
}

#[test]
fn lines_it_would_not_write_are_left_out() {
    let text = format!(
        "# HELP x\nother_metric 5\n\
         {COMMANDS}{{network=\"n\",command=\"ADD\",interface_type=\"routed\",result=\"ok\"}} 3\n\
         {COMMANDS}{{command=\"ADD\",interface_type=\"routed\",result=\"ok\"}} 9\n\
         {COMMANDS}{{network=\"n\",command=\"ADD\",interface_type=\"routed\",result=\"ok\",extra=\"1\"}} 9\n\
         {COMMANDS}{{network=\"n\",command=\"ADD\",interface_type=\"rou\\\"ted\",result=\"ok\"}} 9\n\
         {COMMANDS}{{network=\"n\",command=\"ADD\",command=\"DEL\",result=\"ok\"}} 9\n\
         {COMMANDS}{{network=\"n\",command=\"DEL\",interface_type=\"routed\",result=\"ok\"}} many\n"
    );
    let counts = Counts::read(&text);
    assert_eq!(
        counts
            .render()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count(),
        1,
        "{counts:?}"
    );
    assert_eq!(
        counts.get(&Series::new("n", "ADD", "routed", None)),
        Some(3)
    );
}

#[test]
fn series_are_capped() {
    let mut counts = Counts::default();
    for code in 0..300 {
        counts.count(Series::new("net_1.a", "ADD", "routed", Some(code)));
    }
    assert_eq!(counts.0.len(), MAX_SERIES);
    counts.count(Series::new("net_1.a", "ADD", "routed", Some(0)));
    assert_eq!(
        counts.get(&Series::new("net_1.a", "ADD", "routed", Some(0))),
        Some(2)
    );
    assert_eq!(
        counts.get(&Series::new("net_1.a", "ADD", "routed", Some(299))),
        None
    );
}
