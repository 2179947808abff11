//! Waiting on a condition with a deadline, never a bare sleep: the one waiting helper of the
//! tests and benchmarks.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long `wait_for` waits: long enough for a busy machine, short enough to fail a test
/// that will never pass.
const DEFAULT_LIMIT: Duration = Duration::from_secs(20);

/// Polls `probe` every 10 ms until it answers `Some`, at most `limit` (then fails naming
/// `what`).
pub async fn wait_up_to<T, F, Fut>(limit: Duration, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_up_to(limit, probe).await {
        Some(value) => value,
        None => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// As `wait_up_to`, answering `None` at the deadline instead of failing, for a test that has
/// more to say about what it waited for (the state to print beside the failure).
pub async fn poll_up_to<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `wait_up_to` with the default limit.
pub async fn wait_for<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_up_to(DEFAULT_LIMIT, what, probe).await
}
