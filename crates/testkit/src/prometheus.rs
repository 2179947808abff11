//! A private Prometheus server (Debian's `prometheus` package), scraping given targets every
//! second and evaluating given rule files every second, with its data in a temporary
//! directory; killed and removed on drop.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>`
    pub url: String,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, metrics at `/metrics`) as job
    /// `verigram`, with `rules` loaded, and waits until it is ready.
    pub fn start(targets: &[String], rules: &[&Path]) -> Result<Self, String> {
        let mut last = String::new();
        // Prometheus cannot report a port it chose, so a free one is picked and, should another
        // process take it first, picked again.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port();
            match Self::start_on(port, targets, rules) {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_on(port: u16, targets: &[String], rules: &[&Path]) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("verigram-prometheus-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let targets: Vec<String> = targets.iter().map(|t| quote(t)).collect();
        let rules: Vec<String> = rules.iter().map(|r| quote(&r.display().to_string())).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{}]\n\
             scrape_configs:\n  - job_name: verigram\n    static_configs:\n      - targets: [{}]\n",
            rules.join(", "),
            targets.join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "prometheus is not installed (Debian: apt-get install prometheus); .ci/run installs it".to_owned()
                }
                _ => e.to_string(),
            })?;
        let mut server = Self { child, dir, url: format!("http://127.0.0.1:{port}") };
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let ready = format!("{}/-/ready", self.url);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("prometheus exited with {status}"));
            }
            if blocking_get(&ready).is_some_and(|(status, _)| status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("prometheus was not ready within the deadline".into())
    }

    /// `GET /api/v1/<path>` (path with its query string), the `data` of a successful answer.
    pub async fn api(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}/api/v1/{path}", self.url);
        let response = reqwest::Client::new().get(&url).send().await.map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        match body["status"].as_str() {
            Some("success") => Ok(body["data"].clone()),
            _ => Err(format!("{path}: {body}")),
        }
    }

    /// An instant query's result vector (or scalar), as Prometheus returns it.
    pub async fn query(&self, promql: &str) -> Result<Value, String> {
        let encoded: String = url_encode(promql);
        self.api(&format!("query?query={encoded}")).await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP/1.0 GET on loopback, for the readiness wait (no runtime needed).
fn blocking_get(url: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
