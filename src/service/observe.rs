//! What `/metrics` reads from the store: the queue, the sender pool, tenants and balances.
//!
//! Scrapes do not read the store themselves. The first scrape after `metrics.refresh_ms`
//! starts one read (a task of its own) and waits for it at most `metrics.store_wait_ms`;
//! scrapes meanwhile answer from the last read. So a loop of scrapes costs the store one read
//! per interval, and a hung store costs a scrape the short wait, not `store.timeout_ms`.
//! `verigram_store_up` comes from a ping that opens each read: a store that answers it is up,
//! however long the gauges' own read then takes (it grows with the tenants).

use super::Services;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Instant;

/// When the gauges were last read from the store, and whether a read is under way.
#[derive(Default)]
pub struct GaugeReads {
    state: parking_lot::Mutex<ReadState>,
}

#[derive(Default)]
struct ReadState {
    started: Option<Instant>,
    running: bool,
}

impl GaugeReads {
    /// Takes the right to start a read: none is running and the last one began at least
    /// `interval` ago.
    fn begin(&self, interval: std::time::Duration) -> bool {
        let mut state = self.state.lock();
        let due = state.started.is_none_or(|at| at.elapsed() >= interval);
        if state.running || !due {
            return false;
        }
        *state = ReadState { started: Some(Instant::now()), running: true };
        true
    }

    fn end(&self) {
        self.state.lock().running = false;
    }
}

/// Ends the read however its task ends (a panic too), so the next one can start.
struct Ending(Arc<Services>);

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.gauge_reads.end();
    }
}

impl Services {
    /// Brings the store's gauges up to date when it is time (see the module's note), then
    /// renders every metric.
    pub async fn metrics_text(self: &Arc<Self>) -> Result<String, prometheus::Error> {
        let m = &self.metrics;
        if let Some(telegram) = self.sender.telegram() {
            Metrics::catch_up(&m.telegram_updates_dropped, telegram.dropped_updates());
        }
        let settings = &self.settings.metrics;
        if self.gauge_reads.begin(settings.refresh_ms) {
            let services = Arc::clone(self);
            let (pinged, ping) = tokio::sync::oneshot::channel();
            let read = tokio::spawn(async move {
                let ending = Ending(services);
                ending.0.read_gauges(pinged).await;
            });
            let deadline = tokio::time::Instant::now() + settings.store_wait_ms;
            match tokio::time::timeout_at(deadline, ping).await {
                Ok(Ok(())) => {
                    // Up; fresh gauges if the rest of the read fits in the wait, else the last.
                    let _ = tokio::time::timeout_at(deadline, read).await;
                }
                _ => {
                    tracing::warn!(
                        wait_ms = settings.store_wait_ms.as_millis() as u64,
                        "metrics: the store did not answer in time; answering with the last values"
                    );
                    m.store_up.set(0);
                }
            }
        }
        m.render()
    }

    /// One read of everything the gauges show, opened by a ping (`pinged` once it answered).
    /// When the store does not answer, `verigram_store_up` is 0 and the gauges keep their last
    /// values.
    async fn read_gauges(&self, pinged: tokio::sync::oneshot::Sender<()>) {
        let m = &self.metrics;
        let now = self.clock.now();
        if let Err(e) = self.store.ping().await {
            tracing::warn!(error = &e as &dyn std::error::Error, "metrics: the store did not answer");
            m.store_up.set(0);
            return;
        }
        m.store_up.set(1);
        let _ = pinged.send(());
        let read = async {
            let backlog = self.store.delivery_backlog().await?;
            let accounts = self.store.accounts().await?;
            let tenants = self.store.tenants().await?;
            Ok::<_, crate::store::StoreError>((backlog, accounts, tenants))
        };
        match read.await {
            Ok((backlog, accounts, tenants)) => {
                m.backlog(&backlog, now);
                m.accounts(&accounts, now);
                m.tenants(&tenants);
            }
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "metrics: the store did not answer");
                m.store_up.set(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_read_at_a_time_and_at_most_once_an_interval() {
        let reads = GaugeReads::default();
        assert!(reads.begin(Duration::ZERO));
        assert!(!reads.begin(Duration::ZERO), "a read is under way");
        reads.end();
        assert!(reads.begin(Duration::ZERO), "with no interval, the next scrape reads again");
        reads.end();
        assert!(!reads.begin(Duration::from_secs(60)), "the last read is too recent");
    }
}
