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
        let child = Self::spawn(&dir, &socket)?;
        let mut server = Self { child, dir, socket };
        server.wait_ready(Duration::from_secs(10))?;
        Ok(server)
    }

    /// A `redis-server` on `socket`, keeping its files in `dir` (no snapshots of its own).
    fn spawn(dir: &Path, socket: &Path) -> Result<Child, RedisServerError> {
        Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(socket)
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .args(["--maxmemory-policy", "noeviction", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => RedisServerError::NotInstalled,
                _ => RedisServerError::Start(e.to_string()),
            })
    }

    /// Shuts the server down cleanly, saving its data (`SHUTDOWN SAVE`): from here every
    /// connection is refused, and nothing sent is carried out (fault injection: Redis goes
    /// away). `come_back` starts it again with the data.
    pub fn go_away(&mut self) {
        use std::io::Write;
        let mut conn = std::os::unix::net::UnixStream::connect(&self.socket).expect("connect to redis-server");
        conn.write_all(b"*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n").expect("send SHUTDOWN SAVE");
        let status = self.child.wait().expect("redis-server exits");
        assert!(status.success(), "redis-server shut down with {status}");
    }

    /// Starts the server again after `go_away`, on the same socket, with the data it saved.
    pub fn come_back(&mut self) {
        self.child = Self::spawn(&self.dir, &self.socket).expect("restart redis-server");
        self.wait_ready(Duration::from_secs(10)).expect("redis-server ready again");
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

    /// Stops the server without closing its connections (SIGSTOP): Redis hangs, every call
    /// waits for its timeout (fault injection). `resume` lets it go on.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill").arg(signal).arg(self.child.id().to_string()).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill {signal} redis-server");
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

/// A local Redis Cluster: three primaries and three replicas (`redis-server` processes on
/// loopback ports, formed as `redis-cli --cluster create` forms one), killed and removed on drop.
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    dir: PathBuf,
}

struct ClusterNode {
    port: u16,
    child: Child,
}

impl RedisCluster {
    /// Starts six empty nodes, forms the cluster, and waits until every node sees every slot
    /// served and every replica in sync with its primary.
    pub fn start() -> Result<Self, RedisServerError> {
        // A port picked free can be taken by someone else before redis-server binds it: try
        // again with new ports then.
        let mut last = RedisServerError::Start("no attempt".into());
        for _ in 0..3 {
            match Self::try_start() {
                Ok(cluster) => return Ok(cluster),
                Err(RedisServerError::NotInstalled) => return Err(RedisServerError::NotInstalled),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn try_start() -> Result<Self, RedisServerError> {
        let dir = std::env::temp_dir().join(format!("verigram-cluster-{}", uuid::Uuid::new_v4().simple()));
        let start = |e: std::io::Error| RedisServerError::Start(e.to_string());
        let ports = free_ports(12).map_err(start)?;
        let mut cluster = Self { nodes: Vec::new(), dir: dir.clone() };
        for pair in ports.chunks(2) {
            let (port, bus) = (pair[0], pair[1]);
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).map_err(start)?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--cluster-port", &bus.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"])
                .args(["--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"])
                // Replicas sync at once (the default waits 5 s for more replicas to join).
                .args(["--repl-diskless-sync-delay", "0"])
                .args(["--loglevel", "warning", "--dir"])
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => RedisServerError::NotInstalled,
                    _ => RedisServerError::Start(e.to_string()),
                })?;
            cluster.nodes.push(ClusterNode { port, child });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &cluster.nodes {
            wait_until(deadline, || cli(node.port, &["PING"]).is_ok_and(|answer| answer.trim() == "PONG"))?;
        }
        cluster.form(&ports, deadline)?;
        cluster.wait_healthy(deadline)?;
        Ok(cluster)
    }

    /// What `redis-cli --cluster create … --cluster-replicas 1` does, without its pauses:
    /// distinct config epochs, a third of the slots on each of the first three nodes, every
    /// node introduced to the first, and each of the last three a replica of one primary.
    fn form(&self, ports: &[u16], deadline: Instant) -> Result<(), RedisServerError> {
        let failed = |what: &str, answer: std::io::Result<String>| {
            RedisServerError::Start(format!(
                "{what}: {}",
                answer.map_or_else(|e| e.to_string(), |a| a.trim().to_owned())
            ))
        };
        let ok = |answer: &std::io::Result<String>| answer.as_ref().is_ok_and(|a| a.trim() == "OK");
        let mut ids = Vec::new();
        for (n, node) in self.nodes.iter().enumerate() {
            let epoch = cli(node.port, &["CLUSTER", "SET-CONFIG-EPOCH", &(n + 1).to_string()]);
            if !ok(&epoch) {
                return Err(failed("CLUSTER SET-CONFIG-EPOCH", epoch));
            }
            ids.push(
                cli(node.port, &["CLUSTER", "MYID"])
                    .map_err(|e| RedisServerError::Start(e.to_string()))?
                    .trim()
                    .to_owned(),
            );
        }
        for (node, (first, last)) in self.nodes.iter().zip([(0, 5460), (5461, 10922), (10923, 16383)]) {
            let added = cli(node.port, &["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()]);
            if !ok(&added) {
                return Err(failed("CLUSTER ADDSLOTSRANGE", added));
            }
        }
        let first = self.nodes[0].port;
        for pair in ports.chunks(2).skip(1) {
            let met = cli(first, &["CLUSTER", "MEET", "127.0.0.1", &pair[0].to_string(), &pair[1].to_string()]);
            if !ok(&met) {
                return Err(failed("CLUSTER MEET", met));
            }
        }
        // A replica can follow its primary once it has heard of it through the gossip.
        for (replica, primary) in self.nodes.iter().skip(3).zip(&ids) {
            wait_until(deadline, || ok(&cli(replica.port, &["CLUSTER", "REPLICATE", primary])))?;
        }
        Ok(())
    }

    /// `redis+cluster://…` (every node) for `store.url`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// The ports of the nodes still running.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The port of the primary that serves `key` now.
    pub fn primary_of(&self, key: &str) -> Option<u16> {
        let port = self.ports().into_iter().next()?;
        let slot: u16 = cli(port, &["CLUSTER", "KEYSLOT", key]).ok()?.trim().parse().ok()?;
        let shards = cli(port, &["CLUSTER", "NODES"]).ok()?;
        shards.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.iter().skip(8).any(|range| match range.split_once('-') {
                Some((a, b)) => a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b),
                None => range.parse::<u16>() == Ok(slot),
            });
            let primary = fields.get(2).is_some_and(|flags| flags.contains("master") && !flags.contains("fail"));
            (serves && primary).then(|| fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()).flatten()
        })
    }

    /// Kills one node at once (a primary dies: its replica takes over after the node timeout).
    pub fn kill(&mut self, port: u16) {
        if let Some(at) = self.nodes.iter().position(|n| n.port == port) {
            let mut node = self.nodes.remove(at);
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }

    /// Waits until every running node reports the cluster healthy and every replica is in sync.
    pub fn wait_healthy(&self, deadline: Instant) -> Result<(), RedisServerError> {
        for node in &self.nodes {
            wait_until(deadline, || {
                cli(node.port, &["CLUSTER", "INFO"]).is_ok_and(|i| i.contains("cluster_state:ok"))
            })?;
            wait_until(deadline, || {
                cli(node.port, &["INFO", "replication"])
                    .is_ok_and(|i| i.contains("role:master") || i.contains("master_link_status:up"))
            })?;
        }
        Ok(())
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `redis-cli -p <port> <args>`: its output.
fn cli(port: u16, args: &[&str]) -> std::io::Result<String> {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).stderr(Stdio::null()).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_until(deadline: Instant, mut ready: impl FnMut() -> bool) -> Result<(), RedisServerError> {
    while !ready() {
        if Instant::now() > deadline {
            return Err(RedisServerError::Start("the cluster did not become healthy in time".into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `n` distinct loopback ports that were free a moment ago.
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect()
}
