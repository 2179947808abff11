//! The durable delivery queue and its workers: a send is answered before its delivery, workers
//! (driven here by hand: `delivery.workers = 0` and `Worker::run_once`) deliver it, run the
//! timed tasks (ttl expiry with one refund, deletion of unread messages at ttl, end of a code's
//! validity), take over the jobs of workers that died, put off deferred jobs, and share
//! themselves between tenants.

use crate::helpers::*;
use std::collections::HashSet;
use std::time::Instant;
use verigram::domain::{Clock, DeliveryStatus, RequestId, RequestRecord, TenantId, VerificationStatus};
use verigram::store::{Change, Job, Retention, Scheduled, Task};
use verigram::workers::{Outcome, Worker};

verigram_testkit::on_every_backend!(
    a_send_is_answered_before_its_delivery_and_a_worker_delivers_it,
    nothing_is_delivered_until_a_worker_runs,
    an_undelivered_message_expires_at_ttl_and_is_refunded_once,
    a_job_that_runs_after_the_ttl_sends_nothing,
    an_unread_message_is_deleted_at_ttl_without_refund,
    a_read_message_is_not_deleted_at_ttl,
    the_end_of_validity_is_stored_as_expired,
    a_message_revoked_before_a_worker_sent_it_is_never_sent,
    a_job_held_by_a_dead_worker_is_delivered_once_after_its_lease,
    a_taken_over_job_is_marked_reclaimed,
    a_message_recorded_before_its_worker_died_is_not_sent_again,
    a_sandbox_confirmation_lost_with_its_worker_is_recorded_by_the_next,
    a_deferred_job_waits_until_its_time,
    rounds_go_on_after_the_timed_tasks_of_a_request_are_done,
    deliveries_go_on_after_the_timed_tasks_of_a_request_are_done,
    a_backlog_shares_each_round_with_other_tenants,
);

// ---- helpers ----------------------------------------------------------------------------

/// The service with no delivery workers of its own: the test runs them with `run_once`.
async fn spawn_manual(backend: Backend, configure: impl FnOnce(&mut String)) -> TestApp {
    spawn_app_with(backend, |c| {
        set_key(c, "delivery.workers", "0");
        configure(c);
    })
    .await
}

fn worker(app: &TestApp, name: &str) -> Worker {
    Worker::new(app.services.clone(), name.to_owned())
}

async fn round(w: &Worker) -> Outcome {
    w.run_once().await.expect("a worker round")
}

/// What the sandbox inbox shows right now (newest first), without waiting for the queue to
/// drain as `TestApp::inbox` does (which never ends while nobody works the queue).
async fn messages_now(app: &TestApp) -> Vec<Value> {
    app.sandbox_messages().await
}

/// The sandbox messages of one request, right now.
async fn messages_of(app: &TestApp, request_id: &str) -> Vec<Value> {
    messages_now(app).await.into_iter().filter(|m| m["request_id"] == request_id).collect()
}

/// `sendVerificationMessage` with extra parameters; checks that the answer comes before any
/// delivery (no `delivery_status`) and answers the request id.
async fn send_with(app: &TestApp, tenant: &Tenant, extra: Value) -> String {
    let mut params = json!({"phone_number": PHONE, "code_length": 6});
    if let (Some(p), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    let reply = app.call(tenant, "sendVerificationMessage", params).await;
    let result = reply.result();
    assert!(result.get("delivery_status").is_none(), "a send is answered before its delivery: {reply:?}");
    result["request_id"].as_str().expect("a request id").to_owned()
}

async fn send(app: &TestApp, tenant: &Tenant) -> String {
    send_with(app, tenant, json!({})).await
}

fn keys(tenant: &Tenant, request_id: &str) -> (TenantId, RequestId) {
    (TenantId::parse(&tenant.id).expect("a tenant id"), RequestId::parse(request_id).expect("a request id"))
}

/// The request as the store holds it (what was written, not what a view derives from the clock).
async fn stored(app: &TestApp, tenant: &Tenant, request_id: &str) -> RequestRecord {
    let (t, r) = keys(tenant, request_id);
    app.services.store.request(&t, r, app.clock.now()).await.expect("the store answers").expect("the request exists")
}

async fn queued(app: &TestApp) -> u64 {
    app.services.store.delivery_backlog().await.expect("the store answers").queued
}

async fn refunds(app: &TestApp, tenant: &Tenant) -> Vec<Value> {
    app.ledger(tenant).await.into_iter().filter(|e| e["kind"] == "refund").collect()
}

/// The next job in turn, claimed for `consumer` as a worker would.
async fn claim(app: &TestApp, consumer: &str, lease: Duration) -> Option<Job> {
    app.services.store.claim_next(consumer, lease, app.clock.now()).await.expect("a claim")
}

fn lease_of(app: &TestApp) -> Duration {
    app.services.settings.delivery.lease
}

/// Redis timestamps are whole milliseconds, so an idle time it reports can exceed the real
/// time elapsed by up to a millisecond or two.
const REDIS_CLOCK_SLACK: Duration = Duration::from_millis(5);

/// Runs `w` until a round delivers the message of `request_id`. Memory store: the lease of a
/// job held by a dead worker ends by the service clock, so it moves the clock to one
/// millisecond before the lease ends (nothing may happen), then to its end. Redis: XAUTOCLAIM
/// counts Redis's own idle time, so it polls in real time, and fails if the message went out
/// before `lease` had passed since `held_since` (taken before the job was claimed).
async fn run_until_taken_over(app: &TestApp, w: &Worker, request_id: &str, held_since: Instant, lease: Duration) {
    match app.backend {
        Backend::Memory => {
            app.advance(lease - Duration::from_millis(1));
            assert_eq!(round(w).await, Outcome::Idle, "a job is not taken over before its lease ends");
            assert!(messages_of(app, request_id).await.is_empty(), "sent before the lease ended");
            app.advance(Duration::from_millis(1));
            assert_eq!(round(w).await, Outcome::Worked, "the job is taken over when its lease ends");
        }
        Backend::Redis | Backend::Cluster => {
            let elapsed = wait_for("the job to be taken over when its lease ends", || async {
                let outcome = round(w).await;
                let elapsed = held_since.elapsed();
                if outcome == Outcome::Worked {
                    return Some(elapsed);
                }
                assert!(messages_of(app, request_id).await.is_empty(), "sent by a round that did no work");
                None
            })
            .await;
            assert!(
                elapsed + REDIS_CLOCK_SLACK >= lease,
                "the job was taken over {elapsed:?} after it was claimed, before its lease of {lease:?}"
            );
        }
    }
}

// ---- tests ------------------------------------------------------------------------------

/// With the default workers running: the send answers at once, then a worker delivers the
/// message and the job leaves the queue.
async fn a_send_is_answered_before_its_delivery_and_a_worker_delivers_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = send(&app, &t).await;
    app.wait_delivered(&t, &id).await;
    wait_for("the job to leave the queue", || async { (queued(&app).await == 0).then_some(()) }).await;
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["delivery_status"]["status"], "delivered", "{s:?}");
    let inbox = app.inbox(PHONE).await;
    assert_eq!(inbox.len(), 1, "one message: {inbox:?}");
    assert_eq!(inbox[0]["request_id"], id.as_str());
    assert_eq!(inbox[0]["status"], "delivered");
    let code = app.code_for(&id).await;
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

/// `delivery.workers = 0`: the job waits in the queue until a worker round takes it; the round
/// sends it (`sent`, recorded with the account and message id, the sealed code erased), the
/// sandbox confirms it (`delivered`) and the job leaves the queue.
async fn nothing_is_delivered_until_a_worker_runs(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let w = worker(&app, "w1");
    assert_eq!(round(&w).await, Outcome::Idle, "an empty queue");

    let id = send(&app, &t).await;
    assert_eq!(queued(&app).await, 1, "the job is queued with the request");
    assert!(messages_now(&app).await.is_empty(), "nothing is sent without a worker");
    assert_eq!(app.delivery(&t, &id).await, None, "no delivery status before a worker ran");
    let waiting = stored(&app, &t, &id).await;
    assert!(waiting.code.as_ref().unwrap().sealed.is_some(), "the code waits sealed for the worker");

    assert_eq!(round(&w).await, Outcome::Worked);
    let sent = messages_of(&app, &id).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["status"], "delivered");
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("delivered"));
    let record = stored(&app, &t, &id).await;
    let code = record.code.as_ref().unwrap();
    assert_eq!(code.account.as_deref(), Some("sandbox"));
    assert_eq!(code.message_id, sent[0]["message_id"].as_i64(), "the message id is recorded with the request");
    assert!(code.sealed.is_none(), "the sealed code is erased once the message went out");
    assert_eq!(record.delivery.unwrap().status, DeliveryStatus::Delivered);
    assert_eq!(queued(&app).await, 0, "the job left the queue");

    assert_eq!(round(&w).await, Outcome::Idle, "nothing left to do");
    assert_eq!(messages_now(&app).await.len(), 1, "one message in all");
}

/// Spec: "If the message is not delivered within `ttl` it is deleted, the status becomes
/// `expired`, and the fee is refunded (`is_refunded: true`)." Exactly one refund, whatever
/// runs again afterwards.
async fn an_undelivered_message_expires_at_ttl_and_is_refunded_once(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let w = worker(&app, "w1");
    let id = send_with(&app, &t, json!({"ttl": 30})).await;
    assert_eq!(app.balance(&t).await, 990_000);

    app.advance(Duration::from_secs(31));
    assert_eq!(round(&w).await, Outcome::Worked, "the ttl task (and the job) run");
    let s = app.check(&t, &id, None).await;
    let r = s.result();
    assert_eq!(r["delivery_status"]["status"], "expired", "{s:?}");
    assert_eq!(r["is_refunded"], true, "{s:?}");
    assert_eq!(app.balance(&t).await, 1_000_000, "the fee is back");
    let lines = refunds(&app, &t).await;
    assert_eq!(lines.len(), 1, "one refund line: {lines:?}");
    assert_eq!(lines[0]["request_id"], id.as_str());
    assert_eq!(micros(&lines[0]["amount"]), 10_000);
    assert_eq!(queued(&app).await, 0, "the job of an expired request is done");

    // Later rounds, and the same ttl task and job coming back (as after a worker that ran them
    // and died before finishing them), change nothing.
    assert_eq!(round(&w).await, Outcome::Idle);
    app.advance(Duration::from_secs(60));
    round(&w).await;
    let (tid, rid) = keys(&t, &id);
    let retention = Retention(app.services.settings.store.request_retention);
    let now = app.clock.now();
    app.services
        .store
        .update_request(&tid, rid, retention, now, |r| {
            let again = Change {
                enqueue: true,
                schedule: vec![Scheduled { task: Task::Ttl, at: now }],
                ..Change::from(r.clone())
            };
            (Some(again), ())
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(round(&w).await, Outcome::Worked, "the ttl task and the job run again");
    assert_eq!(round(&w).await, Outcome::Idle);

    assert_eq!(refunds(&app, &t).await.len(), 1, "never refunded twice");
    assert_eq!(app.balance(&t).await, 1_000_000);
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("expired"));
    assert!(messages_now(&app).await.is_empty(), "no message was ever sent");
}

/// A job that only gets its turn after the request's ttl (here: the ttl task is held by a worker
/// that died, so it runs late) must not send the message: it was not delivered within `ttl`,
/// so it is `expired` and refunded.
async fn a_job_that_runs_after_the_ttl_sends_nothing(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let id = send_with(&app, &t, json!({"ttl": 30})).await;
    app.advance(Duration::from_secs(31));
    let now = app.clock.now();
    let task_lease = app.services.settings.delivery.task_lease;
    let held = app.services.store.claim_due(now, now.plus(task_lease), 10).await.unwrap();
    assert!(held.iter().any(|d| d.task == Task::Ttl), "a dead worker holds the ttl task: {held:?}");

    let w = worker(&app, "w1");
    round(&w).await;
    let sent = messages_of(&app, &id).await;
    assert!(sent.is_empty(), "a message went out 1 s after its ttl of 30 s: {sent:?}");
    // Once the dead worker's hold on the task ends, the task runs too.
    app.advance(task_lease);
    round(&w).await;
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["delivery_status"]["status"], "expired", "{s:?}");
    assert_eq!(s.result()["is_refunded"], true, "{s:?}");
    assert_eq!(refunds(&app, &t).await.len(), 1);
}

/// Spec: "If delivered within `ttl` there is no refund; an unread message is still deleted at
/// `ttl`."
async fn an_unread_message_is_deleted_at_ttl_without_refund(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let w = worker(&app, "w1");
    let id = send_with(&app, &t, json!({"ttl": 30})).await;
    assert_eq!(round(&w).await, Outcome::Worked);
    assert_eq!(messages_of(&app, &id).await[0]["status"], "delivered");

    app.advance(Duration::from_secs(29));
    assert_eq!(round(&w).await, Outcome::Idle, "nothing is due before the ttl");
    assert_eq!(messages_of(&app, &id).await[0]["status"], "delivered", "not deleted before the ttl");

    app.advance(Duration::from_secs(1));
    assert_eq!(round(&w).await, Outcome::Worked, "the ttl task runs");
    let after = messages_of(&app, &id).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["status"], "deleted", "the unread message is deleted at its ttl");
    assert_eq!(after[0]["text"], "", "a deleted message shows no text");
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["delivery_status"]["status"], "delivered", "delivered in time: {s:?}");
    assert!(s.result().get("is_refunded").is_none(), "no refund: {s:?}");

    app.advance(Duration::from_secs(60));
    round(&w).await;
    assert_eq!(app.balance(&t).await, 990_000, "no refund");
    assert!(refunds(&app, &t).await.is_empty(), "no refund line");
    assert_eq!(queued(&app).await, 0);
}

/// A message the user read before the ttl stays.
async fn a_read_message_is_not_deleted_at_ttl(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let w = worker(&app, "w1");
    let id = send_with(&app, &t, json!({"ttl": 30})).await;
    assert_eq!(round(&w).await, Outcome::Worked);
    let (status, body) = app.read_message(&id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("read"));

    app.advance(Duration::from_secs(31));
    assert_eq!(round(&w).await, Outcome::Worked, "the ttl task runs");
    let after = messages_of(&app, &id).await;
    assert_eq!(after[0]["status"], "read", "a read message is not deleted: {after:?}");
    assert_ne!(after[0]["text"], "");
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["delivery_status"]["status"], "read", "{s:?}");
    assert!(s.result().get("is_refunded").is_none(), "{s:?}");
    assert!(refunds(&app, &t).await.is_empty());
}

/// Without a ttl, the code's validity is `codes.default_validity`; when it ends, the task
/// writes `expired` into the stored verification status (a view derives it from the clock
/// before that). Nothing is deleted or refunded.
async fn the_end_of_validity_is_stored_as_expired(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let w = worker(&app, "w1");
    let id = send(&app, &t).await;
    assert_eq!(round(&w).await, Outcome::Worked);
    let valid_until = stored(&app, &t, &id).await.code.unwrap().valid_until;
    let validity = app.services.settings.codes.default_validity;

    app.advance(validity - Duration::from_secs(1));
    assert_eq!(round(&w).await, Outcome::Idle, "nothing is due before the end of validity");
    assert_eq!(app.verification(&t, &id, None).await, None, "still valid");
    assert_eq!(stored(&app, &t, &id).await.verification, None);

    app.advance(Duration::from_secs(1));
    assert_eq!(stored(&app, &t, &id).await.verification, None, "not written before a worker ran the task");
    assert_eq!(round(&w).await, Outcome::Worked, "the validity task runs");
    let v = stored(&app, &t, &id).await.verification.expect("a stored verification status");
    assert_eq!(v.status, VerificationStatus::Expired);
    assert_eq!(v.at, valid_until, "expired when the validity ended");
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["verification_status"]["status"], "expired", "{s:?}");
    assert_eq!(s.result()["verification_status"]["updated_at"], valid_until.secs());
    assert_eq!(s.result()["delivery_status"]["status"], "delivered", "{s:?}");
    assert!(s.result().get("is_refunded").is_none(), "{s:?}");
    assert_eq!(messages_of(&app, &id).await[0]["status"], "delivered", "without ttl nothing is deleted");
    assert_eq!(round(&w).await, Outcome::Idle);
    assert_eq!(app.balance(&t).await, 990_000);
}

/// Spec: revoke "deletes the message if not yet delivered"; revoked requests are not refunded.
/// Revoked while its job waits: the worker sends nothing.
async fn a_message_revoked_before_a_worker_sent_it_is_never_sent(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let id = send(&app, &t).await;
    assert_eq!(app.revoke(&t, &id).await.result(), &json!(true));
    assert!(stored(&app, &t, &id).await.code.unwrap().sealed.is_none(), "the sealed code is erased");

    let w = worker(&app, "w1");
    assert_eq!(round(&w).await, Outcome::Worked, "the job is taken and dropped");
    assert!(messages_now(&app).await.is_empty(), "nothing was sent");
    assert_eq!(queued(&app).await, 0);
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["delivery_status"]["status"], "revoked", "{s:?}");
    assert_eq!(s.result()["verification_status"]["status"], "expired", "{s:?}");
    assert!(s.result().get("is_refunded").is_none(), "revoked requests are not refunded: {s:?}");
    assert_eq!(app.balance(&t).await, 990_000);
    assert!(refunds(&app, &t).await.is_empty());
}

/// A worker claims the job and dies without acknowledging it: no other worker sends it while
/// the lease runs; once it ends, a worker takes it over and sends it once.
async fn a_job_held_by_a_dead_worker_is_delivered_once_after_its_lease(backend: Backend) {
    let app = spawn_manual(backend, |c| set_key(c, "delivery.lease", "1")).await;
    let t = app.create_tenant("1", None).await;
    let id = send(&app, &t).await;
    let lease = lease_of(&app);
    let held_since = Instant::now();
    let held = claim(&app, "dead-worker", lease).await.expect("the job");
    assert!(!held.reclaimed, "a first claim is not a take-over");
    assert_eq!(held.request.to_string(), id);

    let w = worker(&app, "w1");
    run_until_taken_over(&app, &w, &id, held_since, lease).await;
    let sent = messages_now(&app).await;
    assert_eq!(sent.len(), 1, "exactly one message: {sent:?}");
    assert_eq!(sent[0]["request_id"], id.as_str());
    assert_eq!(sent[0]["status"], "delivered", "{sent:?}");
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("delivered"));
    assert_eq!(queued(&app).await, 0, "the job is done");
    assert_eq!(round(&w).await, Outcome::Idle);
    assert_eq!(messages_now(&app).await.len(), 1, "exactly one message");
}

/// At the store: a job held past its lease goes to the next claimer, marked `reclaimed`, and
/// the take-over starts a new lease.
async fn a_taken_over_job_is_marked_reclaimed(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let id = send(&app, &t).await;
    let store = &app.services.store;
    let lease = Duration::from_secs(1);
    let held_since = Instant::now();
    let held = claim(&app, "dead-worker", lease).await.expect("the job");

    let taken: Job = match backend {
        Backend::Memory => {
            app.advance(lease - Duration::from_millis(1));
            assert_eq!(claim(&app, "w2", lease).await, None, "lease running");
            app.advance(Duration::from_millis(1));
            claim(&app, "w2", lease).await.expect("taken over")
        }
        Backend::Redis | Backend::Cluster => {
            let (job, elapsed) = wait_for("the job to be taken over when its lease ends", || async {
                claim(&app, "w2", lease).await.map(|job| (job, held_since.elapsed()))
            })
            .await;
            assert!(elapsed + REDIS_CLOCK_SLACK >= lease, "taken over after {elapsed:?}, lease {lease:?}");
            job
        }
    };
    let taken_since = Instant::now();
    assert!(taken.reclaimed, "a take-over is marked reclaimed: {taken:?}");
    assert_eq!(taken.id, held.id, "the same job");
    assert_eq!(taken.request, held.request);
    assert_eq!(taken.request.to_string(), id);

    // The take-over holds a fresh lease: nobody else gets the job at once.
    let third = claim(&app, "w3", lease).await;
    if third.is_some() {
        let elapsed = taken_since.elapsed();
        assert!(
            backend.is_redis() && elapsed + REDIS_CLOCK_SLACK >= lease,
            "the job went to a third worker {elapsed:?} after the take-over: {third:?}"
        );
    }
    store.ack_job(&taken).await.unwrap();
    assert_eq!(queued(&app).await, 0, "an acknowledged job leaves the queue");
    app.advance(Duration::from_secs(3600));
    assert_eq!(claim(&app, "w4", lease).await, None, "and never comes back");
}

/// A worker ("dead-worker") claims the request's job, records its message as sent through
/// `account` as `message_id`, and dies before acknowledging: answers when it claimed the job
/// and the job lease.
async fn sent_by_a_dead_worker(
    app: &TestApp,
    t: &Tenant,
    id: &str,
    account: &str,
    message_id: i64,
    delivered: bool,
) -> (Instant, Duration) {
    let lease = lease_of(app);
    let held_since = Instant::now();
    claim(app, "dead-worker", lease).await.expect("the job");
    let (tid, rid) = keys(t, id);
    let retention = Retention(app.services.settings.store.request_retention);
    let now = app.clock.now();
    app.services
        .store
        .update_request(&tid, rid, retention, now, |r| {
            (r.mark_sent(account, message_id, delivered, now).map(Change::from), ())
        })
        .await
        .unwrap()
        .unwrap();
    (held_since, lease)
}

/// Issue 3: "A job records which account sent which Telegram message before it is
/// acknowledged, so a reclaimed job never sends a second message." The dead worker sent the
/// message through some account, recorded it, and died before acknowledging: the worker that
/// takes the job over sends nothing.
async fn a_message_recorded_before_its_worker_died_is_not_sent_again(backend: Backend) {
    let app = spawn_manual(backend, |c| set_key(c, "delivery.lease", "1")).await;
    let t = app.create_tenant("1", None).await;
    let id = send(&app, &t).await;
    // What the dead worker did: its message went out through another account as message 424242.
    let (held_since, lease) = sent_by_a_dead_worker(&app, &t, &id, "account-of-the-dead-worker", 424_242, true).await;

    let w = worker(&app, "w1");
    run_until_taken_over(&app, &w, &id, held_since, lease).await;
    assert!(messages_now(&app).await.is_empty(), "the take-over sent the message a second time");
    let code = stored(&app, &t, &id).await.code.unwrap();
    assert_eq!(code.account.as_deref(), Some("account-of-the-dead-worker"));
    assert_eq!(code.message_id, Some(424_242));
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("delivered"));
    assert_eq!(queued(&app).await, 0, "the taken-over job is done");
    assert_eq!(round(&w).await, Outcome::Idle);
}

/// Issue 18: a sandbox request was seen stuck at `sent` for good after a Redis outage, its
/// `delivered` written after the job was done, and only once. Now the device's confirmation
/// is recorded before the job is acknowledged: a worker that recorded the send and then lost
/// the store (here: died) leaves the job to the next, which records the confirmation and
/// sends nothing.
async fn a_sandbox_confirmation_lost_with_its_worker_is_recorded_by_the_next(backend: Backend) {
    let app = spawn_manual(backend, |c| set_key(c, "delivery.lease", "1")).await;
    let t = app.create_tenant("1", None).await;
    let id = send(&app, &t).await;
    // What the dead worker recorded: the sandbox accepted the message; no confirmation yet.
    let (held_since, lease) = sent_by_a_dead_worker(&app, &t, &id, "sandbox", 7, false).await;
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("sent"));

    let w = worker(&app, "w1");
    run_until_taken_over(&app, &w, &id, held_since, lease).await;
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("delivered"));
    assert!(messages_now(&app).await.is_empty(), "the take-over sent the message a second time");
    assert_eq!(stored(&app, &t, &id).await.code.unwrap().message_id, Some(7));
    assert_eq!(queued(&app).await, 0, "the taken-over job is done");
    assert_eq!(round(&w).await, Outcome::Idle);
}

/// `defer_job`: the job leaves the queue and comes back at the given time (the due task puts
/// it back), not before.
async fn a_deferred_job_waits_until_its_time(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let id = send(&app, &t).await;
    let store = &app.services.store;
    let now = app.clock.now();
    let job = claim(&app, "w0", lease_of(&app)).await.expect("the job");
    store.defer_job(&job, now.plus(Duration::from_secs(10))).await.unwrap();
    assert_eq!(queued(&app).await, 0, "a deferred job leaves the queue");
    let backlog = store.delivery_backlog().await.unwrap();
    assert_eq!((backlog.queued, backlog.waiting), (0, 1), "and is counted as waiting");

    let w = worker(&app, "w1");
    assert_eq!(round(&w).await, Outcome::Idle, "a deferred job is not taken");
    app.advance(Duration::from_millis(9_999));
    assert_eq!(round(&w).await, Outcome::Idle, "not before its time");
    assert!(messages_now(&app).await.is_empty(), "nothing sent before its time");
    assert_eq!(app.delivery(&t, &id).await, None);

    app.advance(Duration::from_millis(1));
    assert_eq!(round(&w).await, Outcome::Worked, "back in the queue at its time, and delivered");
    assert_eq!(store.delivery_backlog().await.unwrap().total(), 0, "nothing left waiting");
    let sent = messages_of(&app, &id).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("delivered"));
    assert_eq!(queued(&app).await, 0);
    assert_eq!(round(&w).await, Outcome::Idle);
    assert_eq!(messages_now(&app).await.len(), 1);
}

/// Once a request's timed tasks are done and their lease time has passed, the task index may
/// still name the tenant with nothing left in its task set: a worker round then finds nothing
/// due and goes on to the queue (at 2cb81c6, Redis's `claim_due` script answered a one-element
/// array there and every round of every worker failed from then on).
async fn rounds_go_on_after_the_timed_tasks_of_a_request_are_done(backend: Backend) {
    let app = spawn_manual(backend, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let w = worker(&app, "w1");
    let first = send_with(&app, &t, json!({"ttl": 30})).await;
    assert_eq!(round(&w).await, Outcome::Worked);
    app.advance(Duration::from_secs(30));
    assert_eq!(round(&w).await, Outcome::Worked, "the ttl and validity tasks run");
    assert_eq!(messages_of(&app, &first).await[0]["status"], "deleted");
    app.advance(app.services.settings.delivery.task_lease);
    let outcome = w.run_once().await;
    assert!(matches!(outcome, Ok(Outcome::Idle)), "a round with nothing to do: {outcome:?}");

    let second = send(&app, &t).await;
    let outcome = w.run_once().await;
    assert!(matches!(outcome, Ok(Outcome::Worked)), "a round with a job: {outcome:?}");
    assert_eq!(messages_of(&app, &second).await.len(), 1);
    assert_eq!(app.delivery(&t, &second).await.as_deref(), Some("delivered"));
}

/// The same with the process's own workers running: a send after that is still delivered.
async fn deliveries_go_on_after_the_timed_tasks_of_a_request_are_done(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let first = send_with(&app, &t, json!({"ttl": 30})).await;
    app.wait_delivered(&t, &first).await;
    app.advance(Duration::from_secs(30));
    wait_for("the ttl task to delete the unread message", || async {
        (messages_of(&app, &first).await[0]["status"] == "deleted").then_some(())
    })
    .await;
    app.advance(app.services.settings.delivery.task_lease);
    let second = send(&app, &t).await;
    app.wait_delivered(&t, &second).await;
    assert_eq!(queued(&app).await, 0);
}

/// Request ids of every message in the sandbox inbox, checking none is there twice.
async fn delivered_ids(app: &TestApp) -> HashSet<String> {
    let all = messages_now(app).await;
    let ids: HashSet<String> = all.iter().map(|m| m["request_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), all.len(), "a request has two messages");
    ids
}

/// Tenant A queues 40 jobs, then tenant B one; one worker claims `delivery.batch = 4` a round.
/// Tenants are served in turn (each takes at most its share of a batch, later passes fill it),
/// so every round is a full batch and B's job goes in the first round, on both stores.
async fn a_backlog_shares_each_round_with_other_tenants(backend: Backend) {
    const BATCH: usize = 4;
    const BACKLOG: usize = 40;
    let app = spawn_manual(backend, |c| set_key(c, "delivery.batch", &BATCH.to_string())).await;
    let a = app.create_tenant("1", None).await;
    let b = app.create_tenant("1", None).await;
    for _ in 0..BACKLOG {
        send(&app, &a).await;
    }
    let b_id = send(&app, &b).await;
    assert_eq!(queued(&app).await, BACKLOG as u64 + 1);

    let w = worker(&app, "w1");
    let mut delivered = HashSet::new();
    let mut b_round = None;
    for n in 1..=BACKLOG / BATCH + 2 {
        let outcome = round(&w).await;
        let now = delivered_ids(&app).await;
        let left = BACKLOG + 1 - delivered.len();
        assert_eq!(now.len() - delivered.len(), left.min(BATCH), "round {n} delivers a full batch");
        assert_eq!(outcome == Outcome::Worked, left > 0, "round {n}: {outcome:?} with {left} jobs left");
        if b_round.is_none() && now.contains(&b_id) {
            b_round = Some(n);
        }
        delivered = now;
    }
    assert_eq!(delivered.len(), BACKLOG + 1, "every job delivered once");
    assert_eq!(queued(&app).await, 0);
    let b_round = b_round.expect("B's job was delivered");
    assert_eq!(b_round, 1, "B's job waited behind A's backlog ({backend:?})");
}

/// DESIGN.md ("serving them in turn, so one tenant's backlog never starves another's") and
/// `Store::claim_jobs` ("Tenants with work are served in turn"): with a backlog at tenant A, a
/// single job of tenant B goes in the next round, every time. Ten rounds in a row, each with a
/// new job of B's.
async fn a_backlog_never_delays_another_tenant_by_a_round(backend: Backend) {
    const BATCH: usize = 4;
    const TRIALS: usize = 10;
    let app = spawn_manual(backend, |c| set_key(c, "delivery.batch", &BATCH.to_string())).await;
    let a = app.create_tenant("1", None).await;
    let b = app.create_tenant("1", None).await;
    for _ in 0..TRIALS * BATCH {
        send(&app, &a).await;
    }
    let w = worker(&app, "w1");
    for trial in 1..=TRIALS {
        let b_id = send(&app, &b).await;
        assert_eq!(round(&w).await, Outcome::Worked);
        assert!(
            delivered_ids(&app).await.contains(&b_id),
            "round {trial}: tenant B's only job waited behind tenant A's backlog"
        );
    }
}

mod fairness {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory() {
        super::a_backlog_never_delays_another_tenant_by_a_round(crate::helpers::Backend::Memory).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        super::a_backlog_never_delays_another_tenant_by_a_round(crate::helpers::Backend::Redis).await
    }
}
