//! The `verigram` binary as a child process, for the test crates that run it: a clean
//! environment, and `serve` on a free port whose number is read from the JSON start-up log.
//! The binary's path comes from the test crate (`env!("CARGO_BIN_EXE_verigram")`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary at `path`, with nothing of the developer's `VERIGRAM…` environment.
pub fn verigram(path: &str) -> Command {
    let mut cmd = Command::new(path);
    for (key, _) in std::env::vars() {
        if key.starts_with("VERIGRAM") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A `verigram serve` child process, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    /// Its log lines (JSON) from after start-up.
    log: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// The log lines printed so far whose message is `message`.
    pub fn logged(&self, message: &str) -> usize {
        self.log
            .try_iter()
            .filter(|line| serde_json::from_str::<Value>(line).is_ok_and(|v| v["message"] == message))
            .count()
    }

    /// The log lines (parsed) printed so far whose message is `message`.
    pub fn logged_lines(&self, message: &str) -> Vec<Value> {
        self.log
            .try_iter()
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .filter(|v| v["message"] == message)
            .collect()
    }

    /// Every log line printed since start-up (or since the last call of a log reader).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// Sends SIGTERM (what orchestrators and systemd send) and waits at most `within` for the
    /// process to exit; answers its exit status and how long it took, or `None` if it did not.
    pub fn terminate(&mut self, within: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM works");
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `verigram serve --listen 127.0.0.1:0 <args>` with JSON logs, HMAC code hashes and
/// `env`, and waits (at most 30 s) for the line that names its port.
pub fn serve(path: &str, args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Server {
    serve_on(path, "127.0.0.1:0", args, env).unwrap_or_else(|printed| {
        panic!("verigram serve {args:?} did not start; it printed:\n{printed}");
    })
}

/// As `serve`, listening on `listen` (port 0 for a free one); `Err` holds what the process
/// printed when it did not start (it exited, or named no port within 30 s).
pub fn serve_on(path: &str, listen: &str, args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Result<Server, String> {
    let mut child = verigram(path)
        .args(["serve", "--listen", listen])
        .args(args)
        .env("VERIGRAM__LOG__FORMAT", "json")
        .env("VERIGRAM__CODES__HASH", "hmac-sha256")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the verigram binary runs");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    // Keeps draining the log after start-up, so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let line = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            // Its output ended: the process exited.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["message"] == "verigram is listening" {
                let port = v["port"].as_u64().expect("the start-up line names the port");
                return Ok(Server { child, url: format!("http://127.0.0.1:{port}"), log: rx });
            }
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(seen.join("\n"))
}
