//! The load generator: closed and open loops of HTTP requests, each answer checked as cheaply
//! as it can be (its CPU is shared with the server's), and the latencies they saw.

use futures_util::StreamExt;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An answer, read only as far as the check of it needs (the load generator's CPU is shared
/// with the server: it should spend as little as it can, and alike for every row).
#[derive(Deserialize)]
struct Envelope<'a, T> {
    ok: bool,
    result: Option<T>,
    #[serde(default, borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Created<'a> {
    #[serde(borrow)]
    request_id: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct Checked<'a> {
    #[serde(borrow)]
    verification_status: Option<Verification<'a>>,
}

#[derive(Deserialize)]
struct Verification<'a> {
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
}

/// The envelope of `bytes`, its `result` read as `T`; `Err` unless `ok` and a result.
fn answer_of<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let env: Envelope<'a, T> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match (env.ok, env.result) {
        (true, Some(result)) => Ok(result),
        (_, _) => Err(env.error.map_or_else(|| "no result".to_owned(), |e| e.into_owned())),
    }
}

/// How one answer is judged.
#[derive(Clone, Copy)]
pub enum Expect {
    /// `{"ok":true,…}`.
    Ok,
    /// A RequestStatus with a `request_id` (kept for the checks).
    NewRequest,
    /// A RequestStatus whose verification status is `code_invalid` or, for a request that had
    /// its tenth wrong code, `code_max_attempts_exceeded`.
    CodeInvalid,
}

/// Makes the `i`-th request of a scenario; `None` past the last one it can make.
pub type MakeCall = Arc<dyn Fn(usize) -> Option<Call> + Send + Sync>;

/// One request: URL, bearer token, form body.
#[derive(Clone)]
pub struct Call {
    pub url: Arc<str>,
    pub token: Arc<str>,
    pub body: String,
}

/// What a load phase saw.
#[derive(Default)]
pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
    /// The number of the next request to make.
    pub next: usize,
    /// `request_id`s answered by sends.
    pub ids: Vec<String>,
}

impl Outcome {
    pub fn completed(&self) -> usize {
        self.latencies.len()
    }

    fn record(&mut self, latency: Duration, result: Result<Option<String>, String>) {
        match result {
            Ok(id) => {
                self.latencies.push(latency);
                self.ids.extend(id);
            }
            Err(e) => {
                if self.errors < 3 {
                    eprintln!("performance: request failed: {e}");
                }
                self.errors += 1;
            }
        }
    }
}

/// Requests numbered from `first`, `concurrency` in flight, none started after `length`.
pub async fn closed_loop(
    client: &reqwest::Client,
    make: &MakeCall,
    numbers: std::ops::Range<usize>,
    concurrency: usize,
    length: Duration,
    expect: Expect,
) -> Outcome {
    let started = Instant::now();
    let until = started + length;
    let first = numbers.start;
    let results: Vec<(Duration, Result<Option<String>, String>)> = futures_util::stream::iter(numbers)
        .take_while(|_| std::future::ready(Instant::now() < until))
        .scan((), |_, i| std::future::ready(make(i)))
        .map(|call| async move {
            let t0 = Instant::now();
            let result = one(client, call, expect).await;
            (t0.elapsed(), result)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut out = Outcome { elapsed: started.elapsed(), next: first + results.len(), ..Outcome::default() };
    for (latency, result) in results {
        out.record(latency, result);
    }
    out
}

/// Open loop at `rate` requests a second for `length`: at each millisecond tick the requests
/// due by then are issued, however many earlier ones are still waiting; each one's latency runs
/// from its tick. Like wrk2, requests go out over at most `connections` connections: one that
/// finds them all busy waits for one, and the wait counts in its latency.
pub async fn open_loop(
    client: &reqwest::Client,
    make: &MakeCall,
    first: usize,
    connections: usize,
    rate: f64,
    length: Duration,
    expect: Expect,
) -> Outcome {
    let started = tokio::time::Instant::now();
    let ticks = length.as_millis() as u64;
    let connections = Arc::new(tokio::sync::Semaphore::new(connections));
    let mut in_flight = tokio::task::JoinSet::new();
    let mut out = Outcome { next: first, ..Outcome::default() };
    let mut issued = 0usize;
    'ticks: for tick in 0..ticks {
        let at = started + Duration::from_millis(tick);
        tokio::time::sleep_until(at).await;
        let due = ((tick + 1) as f64 * rate / 1000.0) as usize;
        while issued < due {
            let Some(call) = make(out.next) else { break 'ticks };
            out.next += 1;
            issued += 1;
            let (client, connections) = (client.clone(), Arc::clone(&connections));
            in_flight.spawn(async move {
                let result = match connections.acquire_owned().await {
                    Ok(_connection) => one(&client, call, expect).await,
                    Err(_) => Err("the connection slots closed".to_owned()),
                };
                (at.elapsed(), result)
            });
        }
        while let Some(done) = in_flight.try_join_next() {
            if let Ok((latency, result)) = done {
                out.record(latency, result);
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        match done {
            Ok((latency, result)) => out.record(latency, result),
            Err(e) => out.record(Duration::ZERO, Err(format!("load task: {e}"))),
        }
    }
    out.elapsed = started.elapsed();
    out
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One request; `Ok(Some(request_id))` for a send.
async fn one(client: &reqwest::Client, call: Call, expect: Expect) -> Result<Option<String>, String> {
    let res = client
        .post(&*call.url)
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
    let failed = |e: String| format!("{}: {e}: {}", call.url, answer());
    match expect {
        Expect::Ok => answer_of::<serde::de::IgnoredAny>(&bytes).map(|_| None).map_err(failed),
        Expect::NewRequest => answer_of::<Created>(&bytes).map(|c| Some(c.request_id.into_owned())).map_err(failed),
        Expect::CodeInvalid => match answer_of::<Checked>(&bytes).map_err(failed)?.verification_status {
            Some(v) if matches!(&*v.status, "code_invalid" | "code_max_attempts_exceeded") => Ok(None),
            _ => Err(failed("expected code_invalid".into())),
        },
    }
}
