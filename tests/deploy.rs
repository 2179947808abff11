//! The dashboard and the alert rules in deploy/ speak of metrics the service exports, and
//! nothing else: a renamed metric breaks this test, not a dashboard in production.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use verigram::metrics::Metrics;

/// Every `verigram_…` name in a text.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("verigram_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        // A name, not a part of a longer word (a job or file called `…verigram_…`).
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// What the service exports, with the series names a histogram adds.
fn exported() -> BTreeSet<String> {
    let metrics = Metrics::new().unwrap();
    metrics.describe("test", "memory", "sandbox", "all");
    let mut names = BTreeSet::new();
    for name in metrics.names() {
        for suffix in ["", "_bucket", "_sum", "_count"] {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names
}

fn read(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_only_exported(path: &str, text: &str) -> BTreeSet<String> {
    let used = names_in(text);
    let exported = exported();
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(unknown.is_empty(), "{path} uses metrics the service does not export: {unknown:?}");
    used
}

#[test]
fn the_dashboard_shows_only_exported_metrics_and_parses() {
    let text = read("deploy/grafana/verigram.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 10), "a dashboard with its panels");
    let used = assert_only_exported("deploy/grafana/verigram.json", &text);
    // The dashboard covers each area the operators watch.
    for needed in [
        "verigram_api_requests_total",
        "verigram_api_request_duration_seconds_bucket",
        "verigram_sends_accepted_total",
        "verigram_verification_status_total",
        "verigram_delivery_status_total",
        "verigram_queue_jobs",
        "verigram_queue_oldest_job_age_seconds",
        "verigram_sender_accounts",
        "verigram_report_attempts_total",
        "verigram_charged_micro_credits_total",
        "verigram_store_operation_duration_seconds_bucket",
    ] {
        assert!(used.contains(needed), "the dashboard shows {needed}");
    }
}

#[test]
fn the_alerts_watch_only_exported_metrics() {
    let text = read("deploy/prometheus/alerts.yml");
    let used = assert_only_exported("deploy/prometheus/alerts.yml", &text);
    for needed in [
        "verigram_api_requests_total",
        "verigram_queue_oldest_job_age_seconds",
        "verigram_sender_accounts",
        "verigram_reports_dead_lettered_total",
        "verigram_tenant_balance_credits",
        "verigram_store_up",
    ] {
        assert!(used.contains(needed), "an alert watches {needed}");
    }
}

#[test]
fn names_are_read_whole() {
    let names = names_in(r#"rate(verigram_api_requests_total{x="y"}[5m]) / job_verigram_x + verigram_store_up"#);
    assert_eq!(names, BTreeSet::from(["verigram_api_requests_total".to_owned(), "verigram_store_up".to_owned()]));
}

/// The TOML inside the Kubernetes ConfigMap (`data.verigram.toml: |`, indented by four).
fn configmap_toml() -> String {
    let text = read("deploy/kubernetes/configmap.yaml");
    let (_, block) = text.split_once("verigram.toml: |\n").expect("the ConfigMap holds verigram.toml");
    block.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_shipped_configurations_send_through_telegram_and_trust_no_network_by_default() {
    use verigram::config::{SenderKind, Settings};
    // What the files leave to the environment: the pepper.
    let with_pepper = |toml: &str| format!("{toml}\n[codes]\npepper = \"deploy-test-pepper-of-at-least-32-bytes\"\n");
    let example = Settings::from_toml(&with_pepper(&read("deploy/verigram.example.toml")));
    let example = example.unwrap_or_else(|e| panic!("the example loads: {e}"));
    assert_eq!(example.sender.kind, SenderKind::Telegram);
    assert!(!example.metrics.listen.is_empty(), "metrics on their own port");

    // The Kubernetes example names no proxy until the operator fills in the ingress's
    // addresses: the placeholder stops start-up with a message that names the key.
    let toml = configmap_toml();
    let toml = with_pepper(&toml);
    let refused = Settings::from_toml(&toml).expect_err("the placeholder is refused").to_string();
    assert!(refused.contains("limits.trusted_proxies"), "{refused}");
    let filled = toml.replace("FILL-IN-INGRESS-CONTROLLER-POD-ADDRESSES", "10.244.1.17/32");
    let settings = Settings::from_toml(&filled).unwrap_or_else(|e| panic!("the filled-in ConfigMap loads: {e}"));
    assert_eq!(settings.sender.kind, SenderKind::Telegram);
    for net in &settings.limits.trusted_proxies {
        assert!(net.prefix_len() >= 24, "{net}: trust the ingress, not a network");
    }
}
