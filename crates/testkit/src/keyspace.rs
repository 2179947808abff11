//! Reads a test Redis's whole keyspace, for checks of what the service stores.

use crate::RedisServer;

/// One key: its name, type, remaining TTL in milliseconds (-1: none) and every value it holds.
#[derive(Debug)]
pub struct KeyDump {
    pub key: String,
    pub kind: String,
    pub pttl: i64,
    pub values: Vec<String>,
}

/// Reads one key whole, in one atomic step: its type, TTL and contents, or nil when it is gone.
/// The service keeps running while a test dumps its store, so a key listed by `SCAN` may expire
/// (a rate limit's, a lease's) before it is read; read in one script, a key is either gone (and
/// holds nothing to check) or read entire.
const READ_KEY: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
local values
if kind == 'none' then
  return false
elseif kind == 'string' then
  values = { redis.call('GET', key) }
elseif kind == 'hash' then
  values = redis.call('HGETALL', key)
elseif kind == 'list' then
  values = redis.call('LRANGE', key, 0, -1)
elseif kind == 'set' then
  values = redis.call('SMEMBERS', key)
elseif kind == 'zset' then
  values = redis.call('ZRANGE', key, 0, -1)
elseif kind == 'stream' then
  values = {}
  for _, entry in ipairs(redis.call('XRANGE', key, '-', '+')) do
    table.insert(values, entry[1])
    for _, field in ipairs(entry[2]) do
      table.insert(values, field)
    end
  end
else
  return redis.error_reply('key ' .. key .. ' has a type this check cannot read: ' .. kind)
end
return { kind, redis.call('PTTL', key), values }
";

/// Every key of the server with its contents, read type by type (never `DUMP`, whose
/// compression could hide plain text). Keys that expire while the dump runs are left out.
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
    let script = redis::Script::new(READ_KEY);
    let mut out = Vec::new();
    for key in keys {
        let read: Option<(String, i64, Vec<String>)> =
            script.key(&key).invoke_async(&mut conn).await.unwrap_or_else(|e| panic!("reading {key}: {e}"));
        if let Some((kind, pttl, values)) = read {
            out.push(KeyDump { key, kind, pttl, values });
        }
    }
    out
}
