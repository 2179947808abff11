//! What the rows run on: the store (none, a redis-server or a cluster), the servers' runtime,
//! verigram's configuration and its tenant. Shared by the baselines and the scenarios, so both
//! run on the same footing.

use crate::rows::StoreKind;
use crate::{common, ADMIN_TOKEN, MAX_ATTEMPTS};
use anyhow::{bail, Context};
use serde::Deserialize;
use tokio::runtime::Runtime;
use verigram_testkit::{RedisCluster, RedisServer};

/// The store behind a group of rows: nothing, a redis-server, or a six-node cluster.
pub struct Backing {
    pub kind: StoreKind,
    redis: Option<RedisServer>,
    cluster: Option<RedisCluster>,
}

impl Backing {
    pub fn start(kind: StoreKind) -> anyhow::Result<Self> {
        Ok(Self {
            kind,
            redis: (kind == StoreKind::Redis).then(RedisServer::start).transpose().context("redis-server")?,
            cluster: (kind == StoreKind::Cluster).then(RedisCluster::start).transpose().context("redis cluster")?,
        })
    }

    /// verigram's `store.url`.
    pub fn url(&self) -> String {
        match (&self.redis, &self.cluster) {
            (Some(r), _) => r.url(),
            (_, Some(c)) => c.url(),
            _ => "memory://".to_owned(),
        }
    }

    /// One synchronous connection per redis-server, for `INFO cpu`.
    pub fn probes(&self) -> anyhow::Result<Vec<redis::Connection>> {
        let urls: Vec<String> = match (&self.redis, &self.cluster) {
            (Some(r), _) => vec![r.url()],
            (_, Some(c)) => c.ports().iter().map(|p| format!("redis://127.0.0.1:{p}")).collect(),
            _ => Vec::new(),
        };
        urls.iter()
            .map(|u| redis::Client::open(u.as_str())?.get_connection().context("connect a probe to redis-server"))
            .collect()
    }
}

/// A runtime for servers: one tokio thread of its own, as `main` gives the binary.
pub fn server_runtime(name: &str) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .context("server runtime")
}

pub fn app_toml(store_url: &str, hash: &str, workers: usize) -> String {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    format!(
        "[server]\nworkers = {workers}\nrole = \"api\"\n\
         [admin]\ntoken = {}\n\
         [store]\nurl = {}\n\
         [codes]\nhash = {}\npepper = {}\nmax_attempts = {MAX_ATTEMPTS}\n\
         [log]\nlevel = \"warn\"\n{}",
        quote(ADMIN_TOKEN),
        quote(store_url),
        quote(hash),
        quote(common::PEPPER),
        common::LIMITS_OFF,
    )
}

/// Creates a tenant with a balance for millions of sends; answers its API token.
pub async fn create_tenant(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Created {
        token: String,
    }
    let res = client
        .post(format!("{base}/admin/v1/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "bench", "balance": 1_000_000_000}))
        .send()
        .await
        .context("POST /admin/v1/tenants")?;
    let status = res.status();
    if !status.is_success() {
        bail!("POST /admin/v1/tenants answered {status}: {}", res.text().await.unwrap_or_default());
    }
    Ok(res.json::<Created>().await.context("tenant JSON")?.token)
}
