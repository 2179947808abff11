//! The timed tasks of a request: the end of its `ttl` (expiry with a refund, deletion of an
//! unread message) and the end of its code's validity.

use super::deliver::expiry;
use crate::service::Services;
use crate::store::{Change, DueTask, StoreError, Task};
use std::sync::Arc;

pub(super) async fn run(s: Arc<Services>, task: DueTask) -> Result<(), StoreError> {
    let now = s.clock.now();
    let retention = s.retention();
    match task.task {
        Task::Ttl => {
            let Some((record, ())) =
                s.update_request(&task.tenant, task.request, retention, now, |r| (expiry(r, now), ())).await?
            else {
                return Ok(());
            };
            // Not read by the end of its ttl: the message is deleted for both sides.
            let sent = record.code.as_ref().and_then(|c| Some((c.account.clone()?, c.message_id?)));
            if let (true, Some((account, message_id))) = (record.shows_unread_message(), sent) {
                s.sender.delete(&task.tenant, &record, &account, message_id).await;
            }
        }
        Task::Validity => {
            s.update_request(&task.tenant, task.request, retention, now, |r| {
                (r.settle_expiry(now).map(Change::from), ())
            })
            .await?;
        }
        // Deliveries that were put off go back to the queue inside `claim_due`; reports are
        // sent in tasks of their own (`Worker::report`).
        Task::Deliver | Task::Report => {}
    }
    Ok(())
}
