//! The baselines the rows are held to: a no-work handler, one Redis script call, a read then
//! compare-and-set, and argon2id hashing alone. Measured in the same run, on the same cores,
//! so a row's ratio does not depend on the machine.

use crate::cpu::{CpuPerRequest, CpuSample};
use crate::load::{Call, Expect, MakeCall};
use crate::rows::{HashOp, Phase, Row, Target};
use crate::setup::{app_toml, Backing};
use crate::Bench;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::{bail, Context};
use futures_util::StreamExt;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use verigram::config::Settings;
use verigram::domain::{Code, RequestId, TenantId};
use verigram::secrets::{CodeBinding, CodeHasher, Pepper};
use verigram::store::RedisConnection;

/// argon2id hashes or verifications through `CodeHasher` with the server's default cost, as
/// many at once as the server's blocking pool runs (two per core).
pub struct HashingAlone {
    hasher: Arc<CodeHasher>,
    binding: CodeBinding,
    code: Code,
    phc: String,
    pub cores: usize,
}

impl HashingAlone {
    fn new(settings: &Settings, rt: &Runtime) -> anyhow::Result<Self> {
        let pepper = Pepper::new(&[0x5a; 32]).context("pepper")?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let hasher = Arc::new(CodeHasher::new(verigram::secrets::HashScheme::from(&settings.codes), pepper, cores));
        let binding = CodeBinding { tenant: TenantId::generate(), request: RequestId::generate() };
        let code = Code::parse("123456").map_err(|_| anyhow::anyhow!("code"))?;
        let phc = rt.block_on(hasher.hash(&binding, &code))?;
        Ok(Self { hasher, binding, code, phc, cores })
    }

    /// As many `op`s as go in `phase`: how many succeeded, and how long it took.
    pub fn run(&self, rt: &Runtime, op: HashOp, phase: Duration) -> (usize, Duration) {
        let until = Instant::now() + phase;
        let Self { hasher, binding, code, phc, cores } = self;
        rt.block_on(async move {
            let started = Instant::now();
            let done = futures_util::stream::iter(0..)
                .take_while(|_| std::future::ready(Instant::now() < until))
                .map(|_| async move {
                    match op {
                        HashOp::Hash => hasher.hash(binding, code).await.is_ok(),
                        HashOp::Verify => hasher.verify(binding, code, phc).await.unwrap_or(false),
                    }
                })
                .buffer_unordered(cores * 2)
                .filter(|ok| std::future::ready(*ok))
                .count()
                .await;
            (done, started.elapsed())
        })
    }
}

impl Bench {
    /// The no-work handler (no backing) or the one-script handler on `backing`. The latter is
    /// left running: answers its server and a call to it.
    pub fn baseline(
        &mut self,
        backing: Option<&Backing>,
    ) -> anyhow::Result<Option<(actix_web::dev::ServerHandle, MakeCall)>> {
        let name = match backing {
            None => "no-work handler".to_owned(),
            Some(b) => format!("one Redis script call ({})", b.kind.name()),
        };
        let (port, handle) = start_baseline(&self.server_rt, self.opts.workers, backing)?;
        let path = if backing.is_some() { "script" } else { "noop" };
        let call =
            Call { url: format!("http://127.0.0.1:{port}/{path}").into(), token: "x".into(), body: "a=1".into() };
        let make: MakeCall = Arc::new(move |_| Some(call.clone()));
        let mut probes = backing.map(Backing::probes).transpose()?.unwrap_or_default();
        self.scenario("baseline", name, None, Target::None, &make, Expect::Ok, None, &mut probes);
        if let Some(b) = backing {
            // The Redis work of any check that reads a record and then compare-and-sets it in
            // a script, as verigram's checks do: their floor, short of deciding inside Redis.
            let url: Arc<str> = format!("http://127.0.0.1:{port}/read-cas").into();
            let read_cas: MakeCall = Arc::new(move |i| {
                Some(Call { url: Arc::clone(&url), token: "x".into(), body: (i % RECORDS).to_string() })
            });
            let name = format!("read, then compare-and-set ({})", b.kind.name());
            self.scenario("baseline", name, None, Target::None, &read_cas, Expect::Ok, None, &mut probes);
            return Ok(Some((handle, make)));
        }
        self.server_rt.block_on(handle.stop(false));
        Ok(None)
    }

    /// argon2id hashes, then verifies, through `CodeHasher` with the server's default cost and
    /// concurrency, as fast as they go on this machine's cores.
    pub fn hashing_alone(&mut self) -> anyhow::Result<()> {
        let settings = Settings::from_toml(&app_toml("memory://", "argon2id", 1)).context("settings")?;
        let hashing = HashingAlone::new(&settings, &self.server_rt)?;
        let a = &settings.codes.argon2;
        for op in [HashOp::Hash, HashOp::Verify] {
            let what = if op == HashOp::Hash { "hash" } else { "verify" };
            eprintln!("performance: argon2id {what} alone …");
            hashing.run(&self.server_rt, op, self.opts.warmup);
            let before = CpuSample::take(&mut []);
            let (done, took) = hashing.run(&self.server_rt, op, self.opts.phase);
            let after = CpuSample::take(&mut []);
            self.rows.push(Row {
                group: "baseline",
                name: format!(
                    "argon2id {what} alone (m={},t={},p={}; {} at once)",
                    a.memory_kib, a.iterations, a.parallelism, hashing.cores
                ),
                store: None,
                target: Target::None,
                capacity: Phase { errors: 0, rps: done as f64 / took.as_secs_f64() },
                beside: None,
                latency: None,
                cpu: if self.opts.full { before.per_request(&after, done) } else { CpuPerRequest::default() },
            });
        }
        self.hashing = Some(hashing);
        Ok(())
    }
}

/// A bare actix-web server: `/noop` answers a fixed JSON; with a backing, `/script` runs one
/// trivial script first, and `/read-cas` reads a record and compare-and-sets it, both through
/// the Redis store's own connection (`RedisConnection`). Built and driven like verigram's
/// server (same runtime, same workers).
fn start_baseline(
    rt: &Runtime,
    workers: usize,
    backing: Option<&Backing>,
) -> anyhow::Result<(u16, actix_web::dev::ServerHandle)> {
    const BODY: &str = r#"{"ok":true,"result":true}"#;
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let url = backing.map(Backing::url);
    // The store's own connection and timeout, so the baseline's client work is verigram's.
    let settings = Settings::from_toml(&app_toml("memory://", "hmac-sha256", workers)).context("settings")?;
    let timeout = settings.store.timeout_ms;
    rt.block_on(async move {
        let conn = match url {
            Some(url) => Some(RedisConnection::open(&url, timeout).await.context("connect to Redis")?),
            None => None,
        };
        if let Some(conn) = &conn {
            fill_records(conn).await?;
        }
        let script = web::Data::new(redis::Script::new("return redis.call('INCR', KEYS[1])"));
        let cas = web::Data::new(Cas(redis::Script::new(CAS_LUA)));
        let server = HttpServer::new(move || {
            let mut app = App::new().app_data(script.clone()).app_data(cas.clone()).route(
                "/noop",
                web::post()
                    .to(|_body: web::Bytes| async { HttpResponse::Ok().content_type("application/json").body(BODY) }),
            );
            if let Some(conn) = &conn {
                app = app
                    .app_data(web::Data::new(conn.clone()))
                    .route("/script", web::post().to(one_script))
                    .route("/read-cas", web::post().to(read_then_cas));
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

async fn one_script(
    _body: web::Bytes,
    script: web::Data<redis::Script>,
    conn: web::Data<RedisConnection>,
) -> HttpResponse {
    match script.key("bench:counter").invoke_async::<i64>(&mut conn.get_ref().clone()).await {
        Ok(n) => HttpResponse::Ok().content_type("application/json").body(format!(r#"{{"ok":true,"result":{n}}}"#)),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// Records the read-then-compare-and-set baseline cycles through (16 MB of them, so reads miss
/// the caches as a store's would).
const RECORDS: usize = 20_000;

/// A compare-and-set like `update_request.lua`'s: the head's version, then the whole record.
const CAS_LUA: &str = "local head = redis.call('GETRANGE', KEYS[1], 0, 47)
local v = string.match(head, '^(%d+)|')
if v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1";

struct Cas(redis::Script);

fn record_key(i: usize) -> String {
    format!("bench:record:{i}")
}

/// Stores the records, each the size of a stored request (`<version>|<end>|<JSON>`).
async fn fill_records(conn: &RedisConnection) -> anyhow::Result<()> {
    let value = format!("1|9999999999999|{{\"record\":\"{}\"}}", "x".repeat(760));
    let stored = futures_util::stream::iter(0..RECORDS)
        .map(|i| {
            let (key, value, mut conn) = (record_key(i), value.clone(), conn.clone());
            async move { redis::AsyncCommands::set::<_, _, ()>(&mut conn, key, value).await }
        })
        .buffer_unordered(64)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    if stored > 0 {
        bail!("{stored} record(s) could not be stored");
    }
    Ok(())
}

/// Reads the record named by the body, then compare-and-sets it with itself.
async fn read_then_cas(body: web::Bytes, cas: web::Data<Cas>, conn: web::Data<RedisConnection>) -> HttpResponse {
    let i = std::str::from_utf8(&body).ok().and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    let key = record_key(i % RECORDS);
    let mut conn = conn.get_ref().clone();
    let answer = async {
        let record: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
        cas.0.key(&key).arg("1").arg(record.unwrap_or_default()).arg(86_400_000).invoke_async::<i64>(&mut conn).await
    };
    match answer.await {
        Ok(1) => HttpResponse::Ok().content_type("application/json").body(r#"{"ok":true,"result":true}"#),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}
