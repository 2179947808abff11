//! Reads a test Redis's whole keyspace, for checks of what the service stores.

use verigram::test_support::RedisServer;

/// One key: its name, type, remaining TTL in milliseconds (-1: none) and every value it holds.
#[derive(Debug)]
pub struct KeyDump {
    pub key: String,
    pub kind: String,
    pub pttl: i64,
    pub values: Vec<String>,
}

/// Every key of the server with its contents, read type by type (never `DUMP`, whose
/// compression could hide plain text).
pub async fn dump_keyspace(redis: &RedisServer) -> Vec<KeyDump> {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect to the test Redis");
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(1000).query_async(&mut conn).await.expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.expect("TYPE");
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.expect("PTTL");
        let values: Vec<String> = match kind.as_str() {
            "string" => vec![redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET")],
            "hash" => redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await.expect("HGETALL"),
            "list" => redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query_async(&mut conn).await.expect("LRANGE"),
            "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut conn).await.expect("SMEMBERS"),
            "zset" => redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query_async(&mut conn).await.expect("ZRANGE"),
            "stream" => {
                let entries: Vec<(String, Vec<String>)> =
                    redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut conn).await.expect("XRANGE");
                entries.into_iter().flat_map(|(id, fields)| std::iter::once(id).chain(fields)).collect()
            }
            other => panic!("key {key} has a type this check cannot read: {other}"),
        };
        out.push(KeyDump { key, kind, pttl, values });
    }
    out
}
