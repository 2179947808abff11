//! CPU time per request of the server, the load generator and redis-server(s): on shared
//! cores capacity follows their sum, so the report shows where the time went.

/// CPU time per completed request during the capacity phase, in microseconds.
#[derive(Default)]
pub struct CpuPerRequest {
    /// This process minus the load generator's thread: HTTP servers, handlers, hashing pool,
    /// Redis connection drivers.
    pub server: Option<f64>,
    /// The load generator's thread (the main thread).
    pub client: Option<f64>,
    /// redis-server(s), from `INFO cpu` (a cluster: all six nodes).
    pub redis: Option<f64>,
}

/// Cumulative CPU seconds at one moment.
#[derive(Clone, Copy, Default)]
pub struct CpuSample {
    process: Option<f64>,
    main_thread: Option<f64>,
    redis: Option<f64>,
}

impl CpuSample {
    pub fn take(redis: &mut [redis::Connection]) -> Self {
        let redis_cpu = if redis.is_empty() { None } else { redis.iter_mut().map(redis_cpu).sum::<Option<f64>>() };
        Self {
            process: proc_stat_cpu("/proc/self/stat"),
            main_thread: proc_stat_cpu("/proc/thread-self/stat"),
            redis: redis_cpu,
        }
    }

    pub fn per_request(&self, end: &CpuSample, requests: usize) -> CpuPerRequest {
        if requests == 0 {
            return CpuPerRequest::default();
        }
        let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) * 1e6 / requests as f64);
        let client = per(self.main_thread, end.main_thread);
        let process = per(self.process, end.process);
        CpuPerRequest {
            server: process.zip(client).map(|(p, c)| (p - c).max(0.0)),
            client,
            redis: per(self.redis, end.redis),
        }
    }
}

/// utime + stime of a `/proc/…/stat` file, in seconds (clock ticks of 10 ms: USER_HZ is 100 on
/// Linux); `None` elsewhere. The process file counts threads that already exited too.
fn proc_stat_cpu(path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let mut fields = text.get(text.rfind(')')? + 2..)?.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// used_cpu_user + used_cpu_sys of a redis-server, in seconds.
fn redis_cpu(conn: &mut redis::Connection) -> Option<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query(conn).ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}
