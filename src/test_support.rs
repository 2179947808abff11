//! Support for tests and benchmarks that need real infrastructure: a private `redis-server`
//! per test, listening on a Unix socket in its own temporary directory (no port races, no
//! shared state, nothing to clean up by hand).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process, killed (and its directory removed) on drop.
pub struct RedisServer {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    #[error(
        "redis-server is not installed (or not on PATH): install it (Debian: apt-get install redis-server) to run the Redis tests"
    )]
    NotInstalled,
    #[error("redis-server did not start: {0}")]
    Start(String),
}

impl RedisServer {
    /// Starts a fresh, empty, non-persistent Redis and waits until it accepts connections.
    pub fn start() -> Result<Self, RedisServerError> {
        let dir = std::env::temp_dir().join(format!("verigram-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| RedisServerError::Start(e.to_string()))?;
        let socket = dir.join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .args(["--maxmemory-policy", "noeviction", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RedisServerError::NotInstalled,
                _ => RedisServerError::Start(e.to_string()),
            })?;
        let mut server = Self { child, dir, socket };
        server.wait_ready(Duration::from_secs(10))?;
        Ok(server)
    }

    /// `redis+unix://…` for `store.url`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Kills the server at once (fault injection: Redis goes away mid-test).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), RedisServerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                return Err(RedisServerError::Start(format!("exited with {status}: {err}")));
            }
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(RedisServerError::Start("not ready within the deadline".into()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
