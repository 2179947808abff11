//! Code hashing with argon2id (the production default), and codes in flight across a change
//! of `codes.hash`.

use crate::helpers::*;

verigram_testkit::on_every_backend!(argon2id_codes_verify);

fn argon2(c: &mut String) {
    set_key(c, "codes.hash", "\"argon2id\"");
    set_key(c, "codes.argon2.memory_kib", "64");
}

async fn argon2id_codes_verify(backend: Backend) {
    let app = spawn_app_with(backend, argon2).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    let wrong: String = code.bytes().map(|b| char::from(b'0' + (b - b'0' + 1) % 10)).collect();
    for attempt in 1..=4 {
        assert_eq!(app.verification(&t, &id, Some(&wrong)).await.as_deref(), Some("code_invalid"), "{attempt}");
    }
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
    let own = app.send_code(&t, PHONE, "12345678").await["request_id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        app.check(&t, &own, Some("87654321")).await;
    }
    assert_eq!(app.verification(&t, &own, Some("12345678")).await.as_deref(), Some("code_max_attempts_exceeded"));
    if let Some(redis) = &app.redis {
        let dump = dump_keyspace(redis).await;
        let stored: Vec<String> =
            dump.iter().filter(|k| k.key.contains(":r:")).flat_map(|k| k.values.clone()).collect();
        assert!(stored.iter().any(|v| v.contains("$argon2id$v=19$m=64,t=1,p=1$")), "{stored:?}");
        assert!(stored.iter().all(|v| !v.contains(&code) && !v.contains("12345678")));
    }
}

/// Codes hashed under one scheme still verify after a restart with the other (the stored hash
/// names its scheme), and tokens keep working: same Redis, same pepper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_in_flight_survive_a_change_of_hash_scheme() {
    let first = spawn_app(Backend::Redis).await;
    let url = first.redis.as_ref().unwrap().url();
    let t = first.create_tenant("1", None).await;
    let hmac_id = first.send_code(&t, PHONE, "31415926").await["request_id"].as_str().unwrap().to_owned();
    let second = spawn_app_with(Backend::Memory, |c| {
        set_key(c, "store.url", &format!("{url:?}"));
        argon2(c);
    })
    .await;
    let argon_id = second.send_code(&t, PHONE, "27182818").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(second.verification(&t, &hmac_id, Some("31415926")).await.as_deref(), Some("code_valid"));
    assert_eq!(first.verification(&t, &argon_id, Some("27182818")).await.as_deref(), Some("code_valid"));
    assert_eq!(second.balance(&t).await, 980_000, "one store, one balance");
}
