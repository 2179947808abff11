//! The connection the Redis backend talks through.

use super::{StoreError, StoreResult};
use crate::config::{cluster_seeds, CLUSTER_SCHEME};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// One Redis node (through a reconnecting manager) or a cluster (through the cluster client,
/// which follows `MOVED`/`ASK` and refreshes its slot map after a failover). Public so that
/// the benchmarks' baselines talk to Redis exactly as the store does.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    /// Connects to `store.url`: `redis://…` (one node) or `redis+cluster://…` (seed nodes), with
    /// every attempt and call bounded by `timeout`.
    pub async fn open(url: &str, timeout: Duration) -> StoreResult<Self> {
        if url.starts_with(CLUSTER_SCHEME) {
            let seeds = cluster_seeds(url).map_err(|why| StoreError::Failed(why.into()))?;
            // Redirects (MOVED, ASK) and "try again" answers are followed at once or after a
            // short wait; every attempt and the whole call stay within `timeout`.
            let client = redis::cluster::ClusterClient::builder(seeds)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .overall_response_timeout(Some(timeout))
                .retries(6)
                .min_retry_wait(50)
                .max_retry_wait(1000)
                .build()?;
            let connecting = client.get_async_connection();
            match tokio::time::timeout(timeout, connecting).await {
                Ok(conn) => Ok(Conn::Cluster(conn?)),
                Err(_) => Err(StoreError::Unavailable("no cluster node answered in time".into())),
            }
        } else {
            let client = redis::Client::open(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            Ok(Conn::Single(ConnectionManager::new_with_config(client, config).await?))
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
