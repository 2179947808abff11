//! The loops beside the workers: read receipts recorded on their requests, and the advisory
//! work indexes repaired now and then.

use crate::delivery::telegram::transport::ReadReceipt;
use crate::domain::DeliveryStatus;
use crate::service::Services;
use std::sync::Arc;
use tokio::sync::watch;

/// Records the read receipts of Telegram accounts on their requests (`read`), until the
/// service stops.
pub async fn record_reads(
    s: Arc<Services>,
    mut receipts: tokio::sync::mpsc::Receiver<ReadReceipt>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let receipt = tokio::select! {
            r = receipts.recv() => match r {
                Some(receipt) => receipt,
                None => return,
            },
            _ = stop.changed() => return,
        };
        let read = match s.store.take_read(&receipt.account, receipt.peer, receipt.max_id).await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "could not look a read receipt up");
                continue;
            }
        };
        for (tenant, request) in read {
            if let Err(e) = s.record_delivery(&tenant, request, DeliveryStatus::Read).await {
                tracing::warn!(error = &e as &dyn std::error::Error, "could not record a read");
            }
        }
    }
}

/// Rebuilds the advisory work indexes now and then, until the service stops.
pub async fn repair_indexes(s: Arc<Services>, mut stop: watch::Receiver<bool>) {
    let every = s.settings.delivery.repair_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match s.store.repair_indexes().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(entries = n, "the index of tenants with work had lost entries; repaired");
                s.wake.notify_waiters();
            }
            Err(e) => tracing::warn!(error = &e as &dyn std::error::Error, "could not repair the work index"),
        }
    }
}
