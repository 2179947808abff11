//! `sendVerificationMessage` and `checkVerificationStatus` over real HTTP under concurrent
//! load, on the memory store and on Redis, beside two bare actix-web baselines measured in the
//! same run:
//!
//! - "no-work": a handler that answers a small fixed JSON;
//! - "one EVALSHA": a handler that runs one trivial Lua script (`INCR`) on a private
//!   redis-server, through a `ConnectionManager` as the Redis store uses.
//!
//! Set-up (one process, loopback only): each server (verigram, or a baseline) runs with
//! `VERIGRAM_BENCH_WORKERS` actix worker threads (default 1) plus one tokio thread of its own
//! (the runtime that builds it and drives its Redis connection, as `main` does in the binary);
//! argon2 runs on the worker's blocking pool (`codes.hash_concurrency` = one per core). The load
//! generator is a reqwest client on a current-thread tokio runtime on the main thread, keeping
//! `VERIGRAM_BENCH_CONCURRENCY` requests in flight (default 32) over HTTP/1.1 keep-alive.
//! redis-server (7.x, Unix socket, no persistence) is a separate process. All of them share the
//! machine's cores, so the figures compare scenarios with each other and with the baselines;
//! they are not a capacity figure for a dedicated server.
//!
//! Each scenario runs a warm-up (not measured), then `VERIGRAM_BENCH_REQUESTS` requests
//! (default 20000), each scenario stopped after 20 s and the whole run after about 170 s.
//!
//! Each verigram instance gets a tenant with a large balance through the admin API; its sends
//! (`code_length=6`) make the requests that its checks then use, each checked once with a wrong
//! code and once without one. Every answer is checked (`ok`, a `request_id`, `code_invalid`);
//! failures are counted in the table and make the program exit non-zero.
//!
//! Run: `cargo bench --bench api_load`. Cargo passes `--bench`; without it, or with `--test`
//! (`cargo test --benches`, `cargo bench -- --test`), this is a smoke run of a few requests per
//! scenario that fails on any error and writes nothing. The table goes to stdout and to
//! `target/bench-results/api_load.md`.

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::{bail, Context};
use futures_util::StreamExt;
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use verigram::config::Settings;
use verigram::domain::SystemClock;
use verigram::startup::Application;
use verigram::test_support::{RedisServer, RedisServerError};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";
const PEPPER: &str = "bench-pepper-0123456789abcdef0123456789abcdef";
/// Seven digits: a valid code (so it is hashed and compared) that can never equal the six-digit
/// codes the sends generate, so every check is deterministically wrong.
const WRONG_CODE: &str = "0000000";

#[derive(Clone)]
struct Options {
    full: bool,
    requests: usize,
    warmup: usize,
    concurrency: usize,
    workers: usize,
    scenario_limit: Duration,
    run_deadline: Instant,
}

impl Options {
    fn from_env() -> anyhow::Result<Self> {
        // `cargo bench` passes `--bench`; `cargo bench -- --test` passes both, and `cargo test
        // --benches` neither: only `--bench` alone means the full load.
        let args: Vec<String> = std::env::args().skip(1).collect();
        let full = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
        let var = |name: &str, default: usize| -> anyhow::Result<usize> {
            match std::env::var(name) {
                Ok(v) => match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => bail!("{name} must be a positive integer, not {v:?}"),
                },
                Err(_) => Ok(default),
            }
        };
        let workers = var("VERIGRAM_BENCH_WORKERS", 1)?;
        Ok(if full {
            let requests = var("VERIGRAM_BENCH_REQUESTS", 20_000)?;
            Self {
                full,
                requests,
                warmup: (requests / 10).clamp(20, 1000),
                concurrency: var("VERIGRAM_BENCH_CONCURRENCY", 32)?,
                workers,
                scenario_limit: Duration::from_secs(20),
                run_deadline: Instant::now() + Duration::from_secs(170),
            }
        } else {
            Self {
                full,
                requests: 6,
                warmup: 2,
                concurrency: 3,
                workers,
                scenario_limit: Duration::from_secs(10),
                run_deadline: Instant::now() + Duration::from_secs(60),
            }
        })
    }
}

/// One measured scenario.
struct Row {
    name: String,
    requests: usize,
    errors: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// Stopped by its time limit before all requests were sent.
    cut_short: bool,
    cpu: CpuPerRequest,
}

/// CPU time per completed request during the measured phase, in microseconds.
#[derive(Default)]
struct CpuPerRequest {
    /// This process minus the load generator's thread: HTTP server, handlers, argon2 pool,
    /// Redis connection driver.
    server: Option<f64>,
    /// The load generator's thread (the main thread).
    client: Option<f64>,
    /// redis-server, from its `INFO cpu`.
    redis: Option<f64>,
}

/// Cumulative CPU seconds at one moment.
#[derive(Clone, Copy, Default)]
struct CpuSample {
    process: Option<f64>,
    main_thread: Option<f64>,
    redis: Option<f64>,
}

impl CpuSample {
    fn take(redis: Option<&mut redis::Connection>) -> Self {
        Self {
            process: proc_stat_cpu("/proc/self/stat"),
            main_thread: proc_stat_cpu("/proc/thread-self/stat"),
            redis: redis.and_then(redis_cpu),
        }
    }

    fn per_request(&self, end: &CpuSample, requests: usize) -> CpuPerRequest {
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

/// A synchronous connection for `INFO cpu` probes.
fn redis_probe(url: &str) -> anyhow::Result<redis::Connection> {
    redis::Client::open(url)?.get_connection().context("connect a probe to redis-server")
}

/// What a load run saw.
struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
    /// `request_id`s answered by sends (in no particular order).
    ids: Vec<String>,
    cut_short: bool,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

/// How one answer is judged.
#[derive(Clone, Copy)]
enum Expect {
    /// `{"ok":true,…}`.
    Ok,
    /// A RequestStatus with a `request_id` (kept for the checks).
    NewRequest,
    /// A RequestStatus whose verification status is `code_invalid`.
    CodeInvalid,
}

/// One request to make: path, body; every request carries the bearer token.
#[derive(Clone)]
struct Call {
    url: String,
    token: Arc<str>,
    body: String,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("api_load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every scenario; `Ok(false)` when some request failed.
fn run() -> anyhow::Result<bool> {
    let opts = Options::from_env()?;
    let started = Instant::now();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .context("server runtime")?;
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("client runtime")?;
    if let Ok(settings) = Settings::from_toml(&app_toml("memory://", "hmac-sha256", opts.workers)) {
        verigram::telemetry::init(&settings.log);
    }
    if !opts.full {
        println!("api_load: smoke run (no --bench, or --test): {} requests per scenario", opts.requests);
    }

    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // Baselines.
    {
        let (port, handle) = start_baseline(&server_rt, opts.workers, None)?;
        let client = http_client(opts.concurrency)?;
        let call =
            Call { url: format!("http://127.0.0.1:{port}/noop"), token: "x".into(), body: "request_id=1".into() };
        let name = "baseline: no-work handler";
        rows.push(scenario(&client_rt, &client, &opts, None, name, Expect::Ok, |_| call.clone()));
        drop(client);
        server_rt.block_on(handle.stop(false));
    }
    let redis_available = match RedisServer::start() {
        Ok(redis) => {
            let (port, handle) = start_baseline(&server_rt, opts.workers, Some(redis.url()))?;
            let client = http_client(opts.concurrency)?;
            let call = Call {
                url: format!("http://127.0.0.1:{port}/evalsha"),
                token: "x".into(),
                body: "request_id=1".into(),
            };
            let mut probe = redis_probe(&redis.url())?;
            let name = "baseline: one Redis EVALSHA (INCR)";
            rows.push(scenario(&client_rt, &client, &opts, Some(&mut probe), name, Expect::Ok, |_| call.clone()));
            drop(client);
            server_rt.block_on(handle.stop(false));
            true
        }
        Err(RedisServerError::NotInstalled) => {
            notes.push("redis-server is not installed: the Redis rows and baseline were skipped.".to_owned());
            false
        }
        Err(e) => return Err(e).context("redis-server for the baseline"),
    };

    // verigram: memory, then Redis; HMAC, then argon2id defaults.
    for store in ["memory", "redis"] {
        if store == "redis" && !redis_available {
            continue;
        }
        for hash in ["hmac-sha256", "argon2id"] {
            let redis = if store == "redis" { Some(RedisServer::start().context("redis-server")?) } else { None };
            let url = redis.as_ref().map_or_else(|| "memory://".to_owned(), RedisServer::url);
            let mut probe = redis.as_ref().map(|r| redis_probe(&r.url())).transpose()?;
            let settings = Settings::from_toml(&app_toml(&url, hash, opts.workers)).context("bench settings")?;
            let a = &settings.codes.argon2;
            let label = if hash == "argon2id" {
                format!("argon2id (m={},t={},p={})", a.memory_kib, a.iterations, a.parallelism)
            } else {
                hash.to_owned()
            };
            let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
            let app = server_rt
                .block_on(Application::build_with(settings, Arc::new(SystemClock), listener))
                .with_context(|| format!("start verigram ({store}, {hash})"))?;
            let base = format!("http://127.0.0.1:{}", app.port());
            let handle = app.handle();
            server_rt.spawn(app.run_until_stopped());
            let client = http_client(opts.concurrency)?;
            let token: Arc<str> = client_rt.block_on(create_tenant(&client, &base))?.into();

            let send_url = format!("{base}/sendVerificationMessage");
            let send = |i: usize| Call {
                url: send_url.clone(),
                token: Arc::clone(&token),
                body: format!("phone_number=4479111{:05}&code_length=6", i % 100_000),
            };
            let (row, ids) = scenario_with_ids(
                &client_rt,
                &client,
                &opts,
                probe.as_mut(),
                &format!("{store}: send, {label}"),
                Expect::NewRequest,
                send,
            );
            rows.push(row);
            let ids: Arc<[String]> = ids.into();
            if ids.len() < opts.warmup + 1 {
                notes.push(format!("{store}/{hash}: too few sends succeeded to run the checks."));
            } else {
                let check_url = format!("{base}/checkVerificationStatus");
                // Each request is checked once with the wrong code (far below max_attempts), so
                // every check hashes and compares, then writes the attempt.
                let wrong = |i: usize| Call {
                    url: check_url.clone(),
                    token: Arc::clone(&token),
                    body: format!("request_id={}&code={WRONG_CODE}", ids[i % ids.len()]),
                };
                let opts_c = Options { requests: opts.requests.min(ids.len() - opts.warmup), ..opts.clone() };
                let name = format!("{store}: check, wrong code, {label}");
                rows.push(scenario(&client_rt, &client, &opts_c, probe.as_mut(), &name, Expect::CodeInvalid, wrong));
                if hash == "argon2id" {
                    let plain = |i: usize| Call {
                        url: check_url.clone(),
                        token: Arc::clone(&token),
                        body: format!("request_id={}", ids[i % ids.len()]),
                    };
                    let name = format!("{store}: check, no code");
                    rows.push(scenario(&client_rt, &client, &opts_c, probe.as_mut(), &name, Expect::Ok, plain));
                }
            }
            drop(client);
            server_rt.block_on(handle.stop(false));
            drop(probe);
            drop(redis);
        }
    }

    let table = render(&rows, &opts, &notes, started.elapsed());
    println!("{table}");
    let errors: usize = rows.iter().map(|r| r.errors).sum();
    if opts.full {
        let path = results_dir().join("api_load.md");
        std::fs::create_dir_all(results_dir()).context("create target/bench-results")?;
        std::fs::write(&path, &table).with_context(|| format!("write {}", path.display()))?;
        println!("written to {}", path.display());
    }
    if errors > 0 {
        eprintln!("api_load: {errors} request(s) failed; see the table");
    }
    Ok(errors == 0)
}

fn app_toml(store_url: &str, hash: &str, workers: usize) -> String {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    format!(
        "[server]\nworkers = {workers}\n\
         [admin]\ntoken = {}\n\
         [store]\nurl = {}\n\
         [codes]\nhash = {}\npepper = {}\n\
         [log]\nlevel = \"warn\"\n\
         [limits]\ntenant = {{ rate = 0, per = 1, burst = 1 }}\ntenant_daily = {{ rate = 0, per = 1, burst = 1 }}\n\
         token = {{ rate = 0, per = 1, burst = 1 }}\nphone = {{ rate = 0, per = 1, burst = 1 }}\n\
         country = {{ rate = 0, per = 1, burst = 1 }}\nip = {{ rate = 0, per = 1, burst = 1 }}\n\
         wrong_checks = {{ rate = 0, per = 1, burst = 1 }}\n",
        quote(ADMIN_TOKEN),
        quote(store_url),
        quote(hash),
        quote(PEPPER),
    )
}

fn http_client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")
}

/// Creates a tenant with a balance for millions of sends; answers its API token.
async fn create_tenant(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Created {
        token: String,
    }
    let res = client
        .post(format!("{base}/admin/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "bench", "balance": 1_000_000_000}))
        .send()
        .await
        .context("POST /admin/v1/tenants")?;
    let status = res.status();
    if !status.is_success() {
        bail!("POST /admin/v1/tenants answered {status}: {}", res.text().await.unwrap_or_default());
    }
    Ok(res.json::<Created>().await.context("tenant JSON")?.token)
}

/// A bare actix-web server: `/noop` answers a fixed JSON; with a Redis URL, `/evalsha` runs one
/// trivial script first. Built and driven like verigram's server (same runtime, same workers).
fn start_baseline(
    rt: &Runtime,
    workers: usize,
    redis_url: Option<String>,
) -> anyhow::Result<(u16, actix_web::dev::ServerHandle)> {
    const BODY: &str = r#"{"ok":true,"result":true}"#;
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    rt.block_on(async move {
        let conn = match redis_url {
            Some(url) => Some(
                redis::Client::open(url.as_str())?
                    .get_connection_manager()
                    .await
                    .context("connect to the baseline's redis-server")?,
            ),
            None => None,
        };
        let script = web::Data::new(redis::Script::new("return redis.call('INCR', KEYS[1])"));
        let server = HttpServer::new(move || {
            let mut app = App::new().app_data(script.clone()).route(
                "/noop",
                web::post()
                    .to(|_body: web::Bytes| async { HttpResponse::Ok().content_type("application/json").body(BODY) }),
            );
            if let Some(conn) = &conn {
                app = app.app_data(web::Data::new(conn.clone())).route("/evalsha", web::post().to(evalsha));
            }
            app
        })
        .workers(workers)
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok::<_, anyhow::Error>((port, handle))
    })
}

async fn evalsha(
    _body: web::Bytes,
    script: web::Data<redis::Script>,
    conn: web::Data<redis::aio::ConnectionManager>,
) -> HttpResponse {
    let mut conn = conn.get_ref().clone();
    match script.key("bench:counter").invoke_async::<i64>(&mut conn).await {
        Ok(n) => HttpResponse::Ok().content_type("application/json").body(format!(r#"{{"ok":true,"result":{n}}}"#)),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

fn scenario(
    rt: &Runtime,
    client: &reqwest::Client,
    opts: &Options,
    probe: Option<&mut redis::Connection>,
    name: &str,
    expect: Expect,
    make: impl Fn(usize) -> Call,
) -> Row {
    scenario_with_ids(rt, client, opts, probe, name, expect, make).0
}

/// Warm-up, then the measured run; requests are numbered on from the warm-up's.
fn scenario_with_ids(
    rt: &Runtime,
    client: &reqwest::Client,
    opts: &Options,
    mut probe: Option<&mut redis::Connection>,
    name: &str,
    expect: Expect,
    make: impl Fn(usize) -> Call,
) -> (Row, Vec<String>) {
    let now = Instant::now();
    if now >= opts.run_deadline {
        let row = Row {
            name: format!("{name} (skipped: run time budget spent)"),
            requests: 0,
            errors: 0,
            rps: 0.0,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            cut_short: true,
            cpu: CpuPerRequest::default(),
        };
        return (row, Vec::new());
    }
    let deadline = (now + opts.scenario_limit).min(opts.run_deadline);
    eprintln!("api_load: {name} …");
    let warm = rt.block_on(load(client, &make, 0..opts.warmup, opts.concurrency, expect, deadline));
    let before = CpuSample::take(probe.as_deref_mut());
    let main =
        rt.block_on(load(client, &make, opts.warmup..opts.warmup + opts.requests, opts.concurrency, expect, deadline));
    let after = CpuSample::take(probe);
    let mut latencies = main.latencies;
    latencies.sort_unstable();
    let completed = latencies.len();
    let rps = if main.elapsed.is_zero() { 0.0 } else { completed as f64 / main.elapsed.as_secs_f64() };
    let row = Row {
        name: name.to_owned(),
        requests: completed,
        errors: main.errors + warm.errors,
        rps,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        cut_short: main.cut_short || warm.cut_short,
        // A smoke run is far too short for 10 ms ticks.
        cpu: if opts.full { before.per_request(&after, completed) } else { CpuPerRequest::default() },
    };
    let mut ids = warm.ids;
    ids.extend(main.ids);
    (row, ids)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Sends the requests numbered `range` with `concurrency` in flight; none starts after
/// `deadline`.
async fn load(
    client: &reqwest::Client,
    make: &impl Fn(usize) -> Call,
    range: std::ops::Range<usize>,
    concurrency: usize,
    expect: Expect,
    deadline: Instant,
) -> Outcome {
    let total = range.len();
    let started = Instant::now();
    let results: Vec<(Duration, Result<Option<String>, String>)> = futures_util::stream::iter(range)
        .take_while(|_| std::future::ready(Instant::now() < deadline))
        .map(|i| {
            let call = make(i);
            async move {
                let t0 = Instant::now();
                let result = one(client, call, expect).await;
                (t0.elapsed(), result)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut out =
        Outcome { latencies: Vec::with_capacity(results.len()), errors: 0, elapsed, ids: Vec::new(), cut_short: false };
    out.cut_short = results.len() < total;
    let mut shown = 0;
    for (latency, result) in results {
        match result {
            Ok(id) => {
                out.latencies.push(latency);
                out.ids.extend(id);
            }
            Err(e) => {
                out.errors += 1;
                if shown < 3 {
                    eprintln!("api_load: request failed: {e}");
                    shown += 1;
                }
            }
        }
    }
    out
}

/// One request; `Ok(Some(request_id))` for a send.
async fn one(client: &reqwest::Client, call: Call, expect: Expect) -> Result<Option<String>, String> {
    let res = client
        .post(&call.url)
        .bearer_auth(&*call.token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(call.body)
        .send()
        .await
        .map_err(|e| format!("{}: {e}", call.url))?;
    let status = res.status();
    let bytes = res.bytes().await.map_err(|e| format!("{}: {e}", call.url))?;
    let answer = || String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        return Err(format!("{}: HTTP {status}: {}", call.url, answer()));
    }
    let env: Envelope = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}: {}", call.url, answer()))?;
    if !env.ok {
        return Err(format!("{}: {}", call.url, env.error.unwrap_or_else(answer)));
    }
    let result = env.result.unwrap_or_default();
    match expect {
        Expect::Ok => Ok(None),
        Expect::NewRequest => match result.get("request_id").and_then(|v| v.as_str()) {
            Some(id) => Ok(Some(id.to_owned())),
            None => Err(format!("{}: no request_id in {}", call.url, answer())),
        },
        Expect::CodeInvalid => {
            match result.get("verification_status").and_then(|v| v.get("status")).and_then(|v| v.as_str()) {
                Some("code_invalid") => Ok(None),
                _ => Err(format!("{}: expected code_invalid: {}", call.url, answer())),
            }
        }
    }
}

fn results_dir() -> PathBuf {
    // The bench binary lives in <target>/<profile>/deps/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok().and_then(|exe| exe.parent()?.parent()?.parent().map(PathBuf::from)));
    target.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target")).join("bench-results")
}

fn render(rows: &[Row], opts: &Options, notes: &[String], took: Duration) -> String {
    let find = |prefix: &str| rows.iter().find(|r| r.name.starts_with(prefix) && r.rps > 0.0).map(|r| r.rps);
    let noop = find("baseline: no-work");
    let eval = find("baseline: one Redis");
    let ratio = |rps: f64, base: Option<f64>| match base {
        Some(b) if rps > 0.0 => format!("{:.3}", rps / b),
        _ => "–".to_owned(),
    };
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut s = String::new();
    let _ = writeln!(s, "## verigram API load ({})\n", if opts.full { "full run" } else { "smoke run" });
    let _ = writeln!(
        s,
        "{} requests per scenario after {} warm-up requests, {} in flight, HTTP/1.1 keep-alive over loopback. \
         One process on {cores} cores: each server has {} actix worker thread(s) and one tokio thread of its own; \
         the load generator is a current-thread tokio runtime (reqwest) on the main thread; redis-server is a \
         separate process on a Unix socket. Latency is per request as the client sees it. Ratios are req/s of the \
         scenario divided by req/s of the baseline. CPU µs/req is CPU time over completed requests in the measured \
         phase: server = this process minus the load generator's thread (10 ms ticks), client = the load \
         generator's thread, redis = redis-server's `INFO cpu`. When (server + client + redis) CPU per request × \
         req/s approaches the number of cores, the machine is the limit, not the server alone.\n",
        opts.requests, opts.warmup, opts.concurrency, opts.workers,
    );
    let _ = writeln!(
        s,
        "| scenario | requests | errors | req/s | p50 ms | p99 ms | req/s ÷ no-work | req/s ÷ one EVALSHA \
         | server CPU µs/req | client CPU µs/req | redis CPU µs/req |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let micros = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}"));
    for r in rows {
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
            r.name,
            if r.cut_short && r.requests > 0 { " (stopped at its time limit)" } else { "" },
            r.requests,
            r.errors,
            r.rps,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            ratio(r.rps, noop),
            ratio(r.rps, eval),
            micros(r.cpu.server),
            micros(r.cpu.client),
            micros(r.cpu.redis),
        );
    }
    for note in notes {
        let _ = writeln!(s, "\nNote: {note}");
    }
    let _ = writeln!(s, "\nWhole run: {:.1} s.", took.as_secs_f64());
    s
}
