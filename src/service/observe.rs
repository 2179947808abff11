//! What `/metrics` reads from the store at each scrape: the queue, the sender pool, balances.

use super::Services;
use crate::metrics::Metrics;

impl Services {
    /// Brings the gauges read from the store up to date, then renders every metric. When the
    /// store does not answer, `verigram_store_up` is 0 and the store's gauges keep their last
    /// values.
    pub async fn metrics_text(&self) -> Result<String, prometheus::Error> {
        let m = &self.metrics;
        if let Some(telegram) = self.sender.telegram() {
            Metrics::catch_up(&m.telegram_updates_dropped, telegram.dropped_updates());
        }
        let now = self.clock.now();
        let read = async {
            let backlog = self.store.delivery_backlog().await?;
            let accounts = self.store.accounts().await?;
            let tenants = self.store.tenants().await?;
            Ok::<_, crate::store::StoreError>((backlog, accounts, tenants))
        };
        match read.await {
            Ok((backlog, accounts, tenants)) => {
                m.store_up.set(1);
                m.backlog(&backlog, now);
                m.accounts(&accounts, now);
                m.balances(&tenants);
            }
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "metrics: the store did not answer");
                m.store_up.set(0);
            }
        }
        m.render()
    }
}
