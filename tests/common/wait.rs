//! Waiting on a condition with a deadline (never a bare sleep), for the test crates that run
//! the binary. Included with `#[path]`.

use std::time::{Duration, Instant};

/// Polls `probe` every 20 ms until it answers `Some`, at most `limit` (then fails naming `what`).
pub async fn wait_up_to<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
