//! The real Telegram sender (grammers-client over MTProto) end to end, against the local
//! Telegram peer (`verigram_dev_telegram`) on loopback: the service is configured with
//! `sender.kind = "telegram"`, accounts are added through the admin API with `dev_peer`, and
//! everything else goes through the Gateway API and the peer's own record of what each
//! simulated user received.

use crate::helpers::*;
use reqwest::Method;
use verigram_dev_telegram::{Fault, Injection, PeerConfig, Received, SimUser, TelegramPeer};

verigram_testkit::on_every_backend!(
    a_code_travels_over_mtproto_is_read_and_verifies,
    dev_peer_accounts_need_the_switch_and_never_touch_another_account,
    a_send_whose_answer_is_lost_is_found_not_sent_again,
);

mod on_redis {
    use super::*;

    macro_rules! redis_tests {
        ($($name:ident),* $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(Backend::Redis).await
                }
            )*
        };
    }

    redis_tests!(
        revoke_and_ttl_delete_the_message_at_the_peer,
        a_flood_wait_parks_the_account_and_another_sends,
        peer_flood_quarantines_and_a_logged_out_account_is_disabled,
        recipients_without_telegram_or_behind_privacy_are_refused_and_refunded,
        several_accounts_send_at_once_and_every_message_arrives_once,
        a_dropped_connection_and_slow_answers_lose_nothing,
        after_a_restart_of_the_peer_nothing_is_lost_and_reads_catch_up,
        the_store_lost_between_send_and_record_sends_nothing_twice,
        an_account_whose_key_telegram_dropped_is_disabled_and_another_sends,
    );
}

const ACCOUNT: &str = "+4477009000001";

struct Setup {
    peer: TelegramPeer,
    app: TestApp,
    tenant: Tenant,
}

impl Setup {
    /// The peer with `users` and `accounts`, and the service sending through them.
    async fn new(
        backend: Backend,
        accounts: &[&str],
        users: Vec<SimUser>,
        configure: impl FnOnce(&mut String),
    ) -> Self {
        let config =
            PeerConfig { accounts: accounts.iter().map(|a| a.to_string()).collect(), users, ..Default::default() };
        let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let app = spawn_app_with(backend, |c| {
            set_key(c, "sender.kind", r#""telegram""#);
            set_key(c, "sender.dev_peers", "true");
            set_key(c, "sender.call_timeout", "2");
            set_key(c, "pool.interval_ms", "0");
            configure(c);
        })
        .await;
        for (i, phone) in accounts.iter().enumerate() {
            let (status, account) = app
                .admin(
                    Method::POST,
                    "/senders",
                    Some(json!({"id": format!("tg{i}"), "kind": "telegram", "phone_number": phone,
                                "dev_peer": peer.addr().to_string()})),
                )
                .await;
            assert_eq!((status, account["state"].as_str()), (201, Some("active")), "{account}");
        }
        let tenant = app.create_tenant("1", None).await;
        Self { peer, app, tenant }
    }

    async fn send(&self, phone: &str) -> String {
        self.app.send(&self.tenant, phone).await["request_id"].as_str().unwrap().to_owned()
    }

    async fn status(&self, request_id: &str) -> Option<String> {
        self.app.delivery(&self.tenant, request_id).await
    }

    /// Waits until the request's delivery status is `status`, moving the service's clock on
    /// a little each time (so retries put off after a failure come due).
    async fn wait_status(&self, request_id: &str, status: &str) {
        wait_for(&format!("{request_id} to be {status}"), || async {
            self.app.advance(Duration::from_millis(500));
            (self.status(request_id).await.as_deref() == Some(status)).then_some(())
        })
        .await;
    }

    /// Waits until the user's inbox at the peer holds `n` messages.
    async fn wait_inbox(&self, phone: &str, n: usize) -> Vec<Received> {
        wait_for(&format!("{n} message(s) for {phone} at the peer"), || async {
            let inbox = self.peer.inbox(phone);
            (inbox.len() >= n).then_some(inbox)
        })
        .await
    }

    async fn account(&self, id: &str) -> Value {
        let (_, list) = self.app.admin(Method::GET, "/senders", None).await;
        list.as_array().unwrap().iter().find(|a| a["id"] == id).cloned().unwrap_or_else(|| panic!("no {id}: {list}"))
    }
}

/// The code as the user's screen shows it: the digits of the message.
fn code_in(message: &Received) -> String {
    message.text.chars().filter(char::is_ascii_digit).collect()
}

async fn a_code_travels_over_mtproto_is_read_and_verifies(backend: Backend) {
    let s = Setup::new(backend, &[ACCOUNT], vec![SimUser::new(PHONE)], |_| {}).await;
    let id = s.send(PHONE).await;
    s.wait_status(&id, "delivered").await;
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].from, ACCOUNT.trim_start_matches('+'));
    assert!(inbox[0].text.contains("Your code"), "the English template: {:?}", inbox[0].text);
    let calls = s.peer.calls(ACCOUNT);
    for method in ["help.getConfig", "contacts.importContacts", "messages.sendMessage", "contacts.deleteContacts"] {
        assert!(calls.contains(&method), "{method} in {calls:?}");
    }

    // The user reads: the peer pushes updateReadHistoryOutbox and the request turns `read`.
    s.peer.read(PHONE);
    s.wait_status(&id, "read").await;

    let code = code_in(&inbox[0]);
    assert_eq!(code.len(), 6, "{:?}", inbox[0].text);
    let checked = s.app.check(&s.tenant, &id, Some(&code)).await;
    assert_eq!(checked.result()["verification_status"]["status"], "code_valid", "{checked:?}");
    assert_eq!(s.account("tg0").await["sent"], 1);
}

async fn dev_peer_accounts_need_the_switch_and_never_touch_another_account(backend: Backend) {
    let setup = Setup::new(backend, &[ACCOUNT], vec![SimUser::new(PHONE)], |_| {}).await;
    let add = |id: &str, peer: &str| json!({"id": id, "kind": "telegram", "phone_number": ACCOUNT, "dev_peer": peer});
    // Adding under a taken id is refused before anything is written: tg0's session still
    // points at the peer (the old order seeded it with the new address, then said 409).
    let (status, body) = setup.app.admin(Method::POST, "/senders", Some(add("tg0", "127.0.0.9:9"))).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = setup.app.admin(Method::POST, "/senders", Some(add("far", "192.0.2.10:4430"))).await;
    assert_eq!(status, 400, "a peer off loopback: {body}");
    assert!(body["message"].as_str().unwrap().contains("loopback"), "{body}");
    let id = setup.send(PHONE).await;
    setup.wait_status(&id, "delivered").await;
    assert_eq!(setup.wait_inbox(PHONE, 1).await.len(), 1);

    // Without the development switch no such account is taken, whatever the address.
    let app = spawn_app_with(backend, |c| set_key(c, "sender.kind", r#""telegram""#)).await;
    let (status, body) = app.admin(Method::POST, "/senders", Some(add("dev", &setup.peer.addr().to_string()))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("sender.dev_peers"), "{body}");
    let (_, list) = app.admin(Method::GET, "/senders", None).await;
    assert_eq!(list, json!([]), "nothing was added");
}

async fn revoke_and_ttl_delete_the_message_at_the_peer(backend: Backend) {
    let s = Setup::new(backend, &[ACCOUNT], vec![SimUser::new(PHONE)], |_| {}).await;
    // Revoked while Telegram's answer to the send is on its way (the peer has the message, the
    // service does not know yet): the message is taken back as soon as the answer arrives.
    s.peer.inject(Injection::new(Fault::Delay(Duration::from_millis(1500))).method("messages.sendMessage").times(1));
    let revoked = s.send(PHONE).await;
    s.wait_inbox(PHONE, 1).await;
    let reply = s.app.call(&s.tenant, "revokeVerificationMessage", json!({"request_id": revoked})).await;
    assert_eq!(reply.result(), &json!(true), "{reply:?}");
    wait_for("the revoked message to be deleted at the peer", || async {
        s.peer.inbox(PHONE)[0].deleted.then_some(())
    })
    .await;
    assert!(s.peer.calls(ACCOUNT).contains(&"messages.deleteMessages"));
    assert_eq!(s.status(&revoked).await.as_deref(), Some("revoked"));

    // A delivered message stays when its request is revoked (the spec).
    let kept = s.send(PHONE).await;
    s.wait_status(&kept, "delivered").await;
    let reply = s.app.call(&s.tenant, "revokeVerificationMessage", json!({"request_id": kept})).await;
    assert_eq!(reply.result(), &json!(true), "{reply:?}");
    assert!(!s.wait_inbox(PHONE, 2).await[1].deleted);

    // An unread message is deleted for both sides at its ttl; a read one stays.
    let unread = s
        .app
        .call(&s.tenant, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 4, "ttl": 60}))
        .await;
    let unread = unread.result()["request_id"].as_str().unwrap().to_owned();
    s.wait_status(&unread, "delivered").await;
    let inbox = s.wait_inbox(PHONE, 3).await;
    assert!(!inbox[2].deleted);
    s.app.advance(Duration::from_secs(61));
    wait_for("the unread message to be deleted at its ttl", || async {
        s.app.advance(Duration::from_millis(100));
        s.peer.inbox(PHONE)[2].deleted.then_some(())
    })
    .await;
    assert_eq!(s.status(&unread).await.as_deref(), Some("delivered"), "deleted unread, not undelivered");
}

async fn a_flood_wait_parks_the_account_and_another_sends(backend: Backend) {
    const SECOND: &str = "+4477009000002";
    let s = Setup::new(backend, &[ACCOUNT, SECOND], vec![SimUser::new(PHONE)], |_| {}).await;
    s.peer.inject(
        Injection::new(Fault::error(420, "FLOOD_WAIT_300")).account(ACCOUNT).method("messages.sendMessage").times(1),
    );
    let id = s.send(PHONE).await;
    s.wait_status(&id, "delivered").await;
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let flooded = s.account("tg0").await;
    let other = s.account("tg1").await;
    // The pool takes the least recently used account first; whichever got the flood wait is
    // parked and the other sent the message.
    if inbox[0].from == SECOND.trim_start_matches('+') {
        assert_eq!(
            (flooded["state"].as_str(), flooded["reason"].as_str()),
            (Some("flood_wait"), Some("FLOOD_WAIT_300"))
        );
        assert_eq!(other["sent"], 1);
    } else {
        // The first account was not tried: no flood wait was seen.
        assert_eq!(flooded["sent"], 1, "{flooded}");
    }
}

async fn peer_flood_quarantines_and_a_logged_out_account_is_disabled(backend: Backend) {
    const SPAMMY: &str = "+4477009000002";
    const HEALTHY: &str = "+4477009000003";
    let s = Setup::new(backend, &[ACCOUNT, SPAMMY, HEALTHY], vec![SimUser::new(PHONE)], |_| {}).await;
    s.peer.revoke(ACCOUNT);
    s.peer.inject(Injection::new(Fault::error(400, "PEER_FLOOD")).account(SPAMMY).method("messages.sendMessage"));
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = s.send(PHONE).await;
        s.wait_status(&id, "delivered").await;
        ids.push(id);
    }
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), 3, "{inbox:?}");
    assert!(inbox.iter().all(|m| m.from == HEALTHY.trim_start_matches('+')), "{inbox:?}");
    let logged_out = s.account("tg0").await;
    assert_eq!(
        (logged_out["state"].as_str(), logged_out["reason"].as_str()),
        (Some("disabled"), Some("AUTH_KEY_UNREGISTERED"))
    );
    let spammy = s.account("tg1").await;
    assert_eq!((spammy["state"].as_str(), spammy["reason"].as_str()), (Some("quarantined"), Some("PEER_FLOOD")));
    assert_eq!(s.account("tg2").await["sent"], 3);
}

async fn recipients_without_telegram_or_behind_privacy_are_refused_and_refunded(backend: Backend) {
    const PRIVATE: &str = "+15557654321";
    const NOBODY: &str = "+15550000000";
    let users = vec![SimUser::new(PHONE), SimUser { privacy_restricted: true, ..SimUser::new(PRIVATE) }];
    let s = Setup::new(backend, &[ACCOUNT], users, |_| {}).await;
    let ability = s.app.call(&s.tenant, "checkSendAbility", json!({"phone_number": NOBODY})).await;
    assert_eq!(ability.error(), "PHONE_NUMBER_NOT_FOUND", "importContacts found no one");
    let ok = s.app.call(&s.tenant, "checkSendAbility", json!({"phone_number": PHONE})).await;
    assert_eq!(ok.result()["request_cost"], 0.01);

    let id = s.send(PRIVATE).await;
    s.wait_status(&id, "expired").await;
    let r = s.app.check(&s.tenant, &id, None).await;
    assert_eq!(r.result()["is_refunded"], true, "{r:?}");
    assert!(s.peer.inbox(PRIVATE).is_empty());
    assert_eq!(s.account("tg0").await["state"], "active", "a recipient's privacy is not the account's fault");
}

async fn several_accounts_send_at_once_and_every_message_arrives_once(backend: Backend) {
    let accounts = ["+4477009000001", "+4477009000002", "+4477009000003", "+4477009000004"];
    let users: Vec<String> = (0..24).map(|i| format!("+1555100{i:04}")).collect();
    let s = Setup::new(backend, &accounts, users.iter().map(|u| SimUser::new(u)).collect(), |_| {}).await;
    let mut ids = Vec::new();
    for user in &users {
        ids.push(s.send(user).await);
    }
    for id in &ids {
        s.wait_status(id, "delivered").await;
    }
    for user in &users {
        assert_eq!(s.peer.inbox(user).len(), 1, "{user}");
    }
    assert_eq!(s.peer.messages_sent(), users.len());
    let (_, list) = s.app.admin(Method::GET, "/senders", None).await;
    let sent: Vec<u64> = list.as_array().unwrap().iter().map(|a| a["sent"].as_u64().unwrap()).collect();
    assert_eq!(sent.iter().sum::<u64>(), users.len() as u64);
    assert!(sent.iter().filter(|n| **n > 0).count() >= 2, "the pool spread the work: {sent:?}");
}

async fn a_dropped_connection_and_slow_answers_lose_nothing(backend: Backend) {
    let s = Setup::new(backend, &[ACCOUNT], vec![SimUser::new(PHONE)], |_| {}).await;
    // The connection drops when the message is sent: the sender reconnects and sends it.
    s.peer.inject(Injection::new(Fault::Drop).method("messages.sendMessage").times(1));
    let id = s.send(PHONE).await;
    s.wait_status(&id, "delivered").await;
    assert_eq!(s.peer.inbox(PHONE).len(), 1);

    // Slow answers within the call timeout only take longer.
    s.peer.inject(Injection::new(Fault::Delay(Duration::from_millis(700))).times(3));
    let slow = s.send(PHONE).await;
    s.wait_status(&slow, "delivered").await;
    assert_eq!(s.peer.inbox(PHONE).len(), 2);

    // An answer that never comes in time is a transient failure: the account stays active
    // and the job is tried again.
    s.peer.inject(Injection::new(Fault::Delay(Duration::from_secs(30))).method("contacts.importContacts").times(1));
    let late = s.send(PHONE).await;
    s.wait_status(&late, "delivered").await;
    assert_eq!(s.peer.inbox(PHONE).len(), 3);
    assert_eq!(s.account("tg0").await["state"], "active");
}

async fn after_a_restart_of_the_peer_nothing_is_lost_and_reads_catch_up(backend: Backend) {
    let s = Setup::new(backend, &[ACCOUNT], vec![SimUser::new(PHONE)], |_| {}).await;
    let first = s.send(PHONE).await;
    s.wait_status(&first, "delivered").await;

    // Telegram's side goes away; the user reads while the account is disconnected.
    s.peer.stop().await;
    s.peer.read(PHONE);
    let second = s.send(PHONE).await;
    s.app.settle().await;
    s.peer.restart().await.unwrap();

    // The job put off while the peer was down goes out once it is back; the read made while
    // the account was away arrives through getDifference.
    s.wait_status(&second, "delivered").await;
    s.wait_status(&first, "read").await;
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    assert!(s.peer.calls(ACCOUNT).contains(&"updates.getDifference"));
}

/// Issue 18, item 4: Telegram accepted the message and its answer never came (the connection
/// dropped right after; an answer later than the call timeout while another account was
/// free). The next attempt goes through the same account with the same `random_id`; Telegram
/// refuses it as a duplicate, and the message is found in the chat: the user has one
/// message, the request ends `delivered` with its message id (so its `ttl` deletes it).
async fn a_send_whose_answer_is_lost_is_found_not_sent_again(backend: Backend) {
    const SECOND: &str = "+4477009000002";
    let s = Setup::new(backend, &[ACCOUNT, SECOND], vec![SimUser::new(PHONE)], |_| {}).await;
    s.peer.inject(Injection::new(Fault::DropAfter).method("messages.sendMessage").times(1));
    let params = json!({"phone_number": PHONE, "code_length": 4, "ttl": 60});
    let reply = s.app.call(&s.tenant, "sendVerificationMessage", params).await;
    let dropped = reply.result()["request_id"].as_str().unwrap().to_owned();
    s.wait_status(&dropped, "delivered").await;
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), 1, "a second message for one request: {inbox:?}");
    let sender = format!("+{}", inbox[0].from);
    assert!(s.peer.calls(&sender).contains(&"messages.getHistory"), "found in the chat: {:?}", s.peer.calls(&sender));
    assert_eq!(s.app.charges(&s.tenant).await.len(), 1, "charged once");
    // The recorded id is the message's: at the ttl the unread message is deleted for both sides.
    s.app.advance(Duration::from_secs(61));
    wait_for("the found message to be deleted at its ttl", || async {
        s.app.advance(Duration::from_millis(100));
        s.peer.inbox(PHONE)[0].deleted.then_some(())
    })
    .await;

    // Accepted, with the answer later than the call timeout: a transient failure, retried
    // after a backoff. Meanwhile another code goes out through the same account, so by the
    // time of the retry the other account is the less recently used one: the retry still
    // goes through the account the message was handed to, a flood wait there included.
    const OTHER: &str = "+15557654321";
    s.peer.add_user(SimUser::new(OTHER));
    let retries = || s.app.services.metrics.deliveries.with_label_values(&["retry"]).get();
    let retried = retries();
    s.peer.inject(Injection::new(Fault::Delay(Duration::from_secs(30))).method("messages.sendMessage").times(1));
    let late = s.send(PHONE).await;
    let handed = s.wait_inbox(PHONE, 2).await[1].from.clone();
    wait_for("the late answer to count as a failure", || async { (retries() > retried).then_some(()) }).await;
    let other = s.send(OTHER).await;
    wait_for("the other code to go out", || async {
        (s.status(&other).await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    assert_eq!(s.peer.inbox(OTHER)[0].from, handed, "the least recently used account sent both");
    // And when that account is in a flood wait as the retry comes, the retry waits it out
    // rather than go to the free account.
    let flood = Injection::new(Fault::error(420, "FLOOD_WAIT_2")).account(&handed).method("contacts.importContacts");
    s.peer.inject(flood.times(1));
    s.wait_status(&late, "delivered").await;
    assert_eq!(s.peer.faults_left(), 0, "the flood wait struck");
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), 2, "a second message for one request: {inbox:?}");
    let checked = s.app.check(&s.tenant, &late, Some(&code_in(&inbox[1]))).await;
    assert_eq!(checked.result()["verification_status"]["status"], "code_valid", "{checked:?}");
}

/// Issue 18, item 4: the store is unreachable (Redis down, its connections refused) when
/// Telegram's answer arrives, so the send cannot be recorded. Once Redis is back with its data,
/// the job is taken over: the same account resends with the same `random_id`, Telegram
/// refuses the duplicate, and the request ends `delivered`: one message, one charge. (A
/// Redis that only hangs instead carries the record out late, when it wakes: the take-over
/// then finds the message recorded.)
async fn the_store_lost_between_send_and_record_sends_nothing_twice(backend: Backend) {
    // The peer holds its answer 4 s (within the 5 s call timeout): time to take Redis away.
    let mut s = Setup::new(backend, &[ACCOUNT], vec![SimUser::new(PHONE)], |c| {
        set_key(c, "store.timeout_ms", "300");
        set_key(c, "sender.call_timeout", "5");
        set_key(c, "delivery.lease", "16");
    })
    .await;
    s.peer.inject(Injection::new(Fault::Delay(Duration::from_secs(4))).method("messages.sendMessage").times(1));
    let id = s.send(PHONE).await;
    s.wait_inbox(PHONE, 1).await;
    let failed_records = s.app.store_errors("update_known_request");
    s.app.redis.as_mut().expect("Redis").go_away();
    wait_for("the send's record to fail", || async {
        (s.app.store_errors("update_known_request") > failed_records).then_some(())
    })
    .await;
    s.app.redis.as_mut().expect("Redis").come_back();
    // The job comes back when its lease (16 s, Redis's clock) ends.
    wait_up_to(Duration::from_secs(60), "the request to be delivered", || async {
        (s.status(&id).await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), 1, "a second message for one request: {inbox:?}");
    assert!(s.peer.calls(ACCOUNT).contains(&"messages.getHistory"));
    assert_eq!(s.app.charges(&s.tenant).await.len(), 1, "charged once");
    let checked = s.app.check(&s.tenant, &id, Some(&code_in(&inbox[0]))).await;
    assert_eq!(checked.result()["verification_status"]["status"], "code_valid", "{checked:?}");
}

/// Issue 18: Telegram dropped an account's authorization key (its `-404` transport error).
/// The account is disabled with the reason, so the dead-account alert fires, and its message
/// goes out through another account.
async fn an_account_whose_key_telegram_dropped_is_disabled_and_another_sends(backend: Backend) {
    const SECOND: &str = "+4477009000002";
    let s = Setup::new(backend, &[ACCOUNT, SECOND], vec![SimUser::new(PHONE)], |_| {}).await;
    let warm = s.send(PHONE).await;
    s.wait_status(&warm, "delivered").await;
    let dropped = format!("+{}", s.peer.inbox(PHONE)[0].from);
    let id = if dropped == ACCOUNT { "tg0" } else { "tg1" };
    s.peer.forget_key(&dropped);
    // The least recently used account goes first: the forgotten one is tried by the second
    // send at the latest.
    let mut sent = vec![warm];
    let mut account = s.account(id).await;
    while account["state"] != "disabled" && sent.len() < 4 {
        let next = s.send(PHONE).await;
        s.wait_status(&next, "delivered").await;
        sent.push(next);
        account = s.account(id).await;
    }
    assert_eq!(account["reason"], "AUTH_KEY_NOT_FOUND", "{account}");
    let inbox = s.peer.inbox(PHONE);
    assert_eq!(inbox.len(), sent.len(), "every code once: {inbox:?}");
    let dead = s.app.services.metrics.account_flood_waits.with_label_values(&[id, "dead"]).get();
    assert_eq!(dead, 1, "counted for the alert");
}

/// The peer as grammers-client sees it, without verigram in between: `contacts.resolvePhone`
/// answers a user, or `PHONE_NOT_OCCUPIED` as Telegram does for a number without an account,
/// and an injected `FLOOD_WAIT_300` arrives as grammers' parsed RPC error.
#[tokio::test]
async fn grammers_reads_the_peers_answers_and_errors() {
    use grammers_client::{tl, Client};
    use grammers_mtsender::{InvocationError, SenderPool};
    use grammers_session::storages::MemorySession;
    use grammers_session::types::DcOption;
    use grammers_session::Session;
    use std::sync::Arc;

    let config = PeerConfig { accounts: vec![ACCOUNT.into()], users: vec![SimUser::new(PHONE)], ..Default::default() };
    let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let std::net::SocketAddr::V4(v4) = peer.addr() else { panic!("an IPv4 address") };
    let session = Arc::new(MemorySession::default());
    let key = verigram_dev_telegram::dev_auth_key(ACCOUNT.trim_start_matches('+'));
    let ipv6 = std::net::SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0);
    session.set_dc_option(&DcOption { id: 2, ipv4: v4, ipv6, auth_key: Some(key) }).await.unwrap();
    session.set_home_dc_id(2).await.unwrap();
    let SenderPool { runner, handle, .. } = SenderPool::new(session, 1);
    let client = Client::new(handle);
    let runner = tokio::spawn(runner.run());

    let tl::enums::contacts::ResolvedPeer::Peer(found) =
        client.invoke(&tl::functions::contacts::ResolvePhone { phone: PHONE_DIGITS.into() }).await.unwrap();
    let [tl::enums::User::User(user)] = found.users.as_slice() else { panic!("{found:?}") };
    assert_eq!((user.id, user.phone.as_deref()), (15551234567, Some(PHONE_DIGITS)));
    assert!(user.access_hash.is_some());

    let missing = client.invoke(&tl::functions::contacts::ResolvePhone { phone: "15550000000".into() }).await;
    let Err(InvocationError::Rpc(e)) = missing else { panic!("{missing:?}") };
    assert_eq!((e.code, e.name.as_str()), (400, "PHONE_NOT_OCCUPIED"));

    peer.inject(Injection::new(Fault::error(420, "FLOOD_WAIT_300")).times(1));
    let flooded = client.invoke(&tl::functions::updates::GetState {}).await;
    let Err(InvocationError::Rpc(e)) = flooded else { panic!("{flooded:?}") };
    assert_eq!((e.code, e.name.as_str(), e.value), (420, "FLOOD_WAIT", Some(300)));
    let tl::enums::updates::State::State(state) = client.invoke(&tl::functions::updates::GetState {}).await.unwrap();
    assert_eq!(state.pts, 1, "a fresh account");

    client.disconnect();
    runner.await.unwrap();
}

/// A development account's key is derived on both sides without talking: the service's
/// derivation (for `sender add-dev`) and the peer's must agree.
#[test]
fn the_service_and_the_peer_derive_the_same_development_key() {
    for phone in ["447700900001", "15551234567"] {
        assert_eq!(
            verigram::delivery::telegram::dev_key::dev_auth_key(phone),
            verigram_dev_telegram::dev_auth_key(phone)
        );
    }
    assert_ne!(
        verigram_dev_telegram::dev_auth_key("447700900001"),
        verigram_dev_telegram::dev_auth_key("447700900002")
    );
}
