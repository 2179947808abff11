//! Building the application from settings, and running it.

use crate::api::{self, AppState};
use crate::config::{Role, SenderKind, Settings, StoreKind};
use crate::delivery::pool::Pool;
use crate::delivery::sandbox::SandboxInbox;
use crate::delivery::telegram::transport::TelegramAccounts;
use crate::delivery::{Sender, Transport};
use crate::domain::{AccountKind, Clock, Pacing, SenderAccount, SystemClock};
use crate::metrics::Metrics;
use crate::secrets::{CodeHasher, CodeSealer, HashScheme, Pepper, TokenKeys};
use crate::service::Services;
use crate::store::{MemoryStore, RedisStore, Store};
use crate::workers::Worker;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// How many messages the sandbox inbox keeps.
const SANDBOX_CAPACITY: usize = 10_000;

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own listener (`metrics.listen`), and its port.
    metrics_server: Option<(u16, Server)>,
    /// The admin API on its own listener (`admin.listen`), and its port.
    admin_server: Option<(u16, Server)>,
    services: Arc<Services>,
}

use crate::callbacks::dispatch::HostResolver;
use crate::callbacks::resolver::DnsResolver;

/// Delivery reports one process sends at once (each host also has its own, lower limit).
const REPORTS_IN_FLIGHT: usize = 1024;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.server.listen)
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        Self::build_with(settings, Arc::new(SystemClock), listener).await
    }

    /// Builds on a listener that is already bound (tests bind port 0) and a given clock.
    pub async fn build_with(settings: Settings, clock: Arc<dyn Clock>, listener: TcpListener) -> anyhow::Result<Self> {
        let resolver = DnsResolver::new(&settings.callbacks)
            .context("cannot set up the DNS resolver for callback hosts (callbacks.dns_servers)")?;
        Self::build_with_resolver(settings, clock, listener, Arc::new(resolver)).await
    }

    /// As `build_with`, with the resolver that callback hosts are looked up with (tests script
    /// one to play DNS tricks).
    pub async fn build_with_resolver(
        settings: Settings,
        clock: Arc<dyn Clock>,
        listener: TcpListener,
        resolver: Arc<dyn HostResolver>,
    ) -> anyhow::Result<Self> {
        let sandbox_guarded = sandbox_exposure(&settings, listener.local_addr()?.ip())?;
        let services = Arc::new(build_services(settings, clock, resolver).await?);
        let settings = Arc::clone(&services.settings);
        let admin_token = settings.admin.token().map_err(anyhow::Error::msg)?;
        if sandbox_guarded && admin_token.is_none() {
            anyhow::bail!("sandbox.public needs admin.token: the sandbox inbox asks for it on a public address");
        }
        if admin_token.is_none() {
            tracing::info!("admin.token is not set: the admin API is off");
        }
        let state = web::Data::new(AppState {
            services: Arc::clone(&services),
            error_status: settings.api.error_status,
            body_limit: settings.server.body_limit,
            admin_token,
            metrics_token: settings.metrics.token().map_err(anyhow::Error::msg)?,
            sandbox_guarded,
            role: settings.server.role,
        });
        let port = listener.local_addr()?.port();
        let grace = settings.server.shutdown_grace;
        let metrics_server = match settings.metrics.own_listener() {
            Some(address) => Some(side_listener("metrics", address, &state, api::configure_metrics)?),
            None => None,
        };
        let admin_server = match settings.admin.own_listener() {
            Some(address) if settings.server.role.serves_api() => {
                Some(side_listener("the admin API", address, &state, api::configure_admin)?)
            }
            _ => None,
        };
        let mut server = HttpServer::new(move || {
            App::new().wrap_fn(api::with_trace_id).configure(|cfg| api::configure(cfg, &state))
        })
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(2))
        // Signals are ours (`run_until_stopped`): workers stop with the server, in one grace.
        .disable_signals()
        .shutdown_timeout(grace.as_secs())
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(port, config = %settings.summary(), "verigram is listening");
        Ok(Self { port, server: server.run(), metrics_server, admin_server, services })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener, when `metrics.listen` set one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    pub fn services(&self) -> Arc<Services> {
        Arc::clone(&self.services)
    }

    /// The port of the separate admin listener, when `admin.listen` set one.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_server.as_ref().map(|(port, _)| *port)
    }

    /// Serves (and runs the delivery workers, by role) until SIGINT/SIGTERM or until stopped
    /// through `handle()`. Then, within `server.shutdown_grace`: the listener closes, requests
    /// in flight finish, workers finish the job in hand and put back the jobs they claimed,
    /// reports in flight finish, and the process's sender-account leases are released. What
    /// is still running when the grace ends is left to its lease (another process takes it).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let services = self.services;
        let grace = services.settings.server.shutdown_grace;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        if services.settings.server.role.runs_workers() {
            workers.spawn(crate::workers::repair_indexes(Arc::clone(&services), stopped.clone()));
            if let Some(receipts) = services.read_receipts.lock().take() {
                workers.spawn(crate::workers::record_reads(Arc::clone(&services), receipts, stopped.clone()));
            }
            let prefix = uuid::Uuid::new_v4().simple().to_string();
            for n in 0..services.settings.delivery.workers {
                let worker = Worker::new(Arc::clone(&services), format!("{}-{n}", &prefix[..12]));
                workers.spawn(worker.run(stopped.clone()));
            }
        }
        let side: Vec<_> = [self.metrics_server, self.admin_server]
            .into_iter()
            .flatten()
            .map(|(_, server)| (server.handle(), tokio::spawn(server)))
            .collect();
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let served = tokio::select! {
            served = &mut server => Some(served),
            signal = shutdown_signal() => {
                tracing::info!(signal, grace_secs = grace.as_secs(), "stopping");
                None
            }
        };
        let deadline = tokio::time::Instant::now() + grace;
        let _ = stop.send(true);
        let served = match served {
            Some(served) => served,
            None => {
                handle.stop(true).await;
                server.await
            }
        };
        let drained = tokio::time::timeout_at(deadline, async {
            while workers.join_next().await.is_some() {}
            // Every report slot free again: no report of this process is in flight.
            let _ = services.report_slots.acquire_many(REPORTS_IN_FLIGHT as u32).await;
        });
        if drained.await.is_err() {
            tracing::warn!("the grace period ended with work in hand; its leases will hand it to another process");
        }
        services.sender.release_accounts().await;
        for (handle, server) in side {
            handle.stop(false).await;
            let _ = server.await;
        }
        tracing::info!("stopped");
        served.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// A handle that stops the server (tests, embedding).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Whether the sandbox inbox, served on `ip`, must ask for the admin token; an error when it
/// would show every code on a non-loopback address without the operator having said so.
fn sandbox_exposure(settings: &Settings, ip: std::net::IpAddr) -> anyhow::Result<bool> {
    let inbox = settings.sender.kind == SenderKind::Sandbox && settings.server.role.runs_workers();
    if !inbox || ip.is_loopback() {
        return Ok(false);
    }
    if !settings.sandbox.public {
        anyhow::bail!(
            "the sandbox sender shows every code at /sandbox, and this process listens on {ip}, not on loopback: \
             use sender.kind = \"telegram\" (deploy/README.md), listen on 127.0.0.1, or, for a shared demo, set \
             sandbox.public = true (the inbox then asks for the admin token)"
        );
    }
    tracing::warn!(%ip, "sandbox.public: the sandbox inbox is served on a non-loopback address, behind the admin token");
    Ok(true)
}

/// A listener of its own for part of the routes (`metrics.listen`, `admin.listen`).
fn side_listener(
    what: &str,
    address: std::net::SocketAddr,
    state: &web::Data<AppState>,
    configure: fn(&mut web::ServiceConfig, &web::Data<AppState>),
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(address).with_context(|| format!("cannot listen for {what} on {address}"))?;
    let port = listener.local_addr()?.port();
    let state = state.clone();
    let server =
        HttpServer::new(move || App::new().wrap_fn(api::with_trace_id).configure(|cfg| configure(cfg, &state)))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
    tracing::info!(port, "{what} is served on its own listener");
    Ok((port, server))
}

/// Waits for SIGTERM (orchestrators, systemd) or SIGINT (Ctrl-C); answers which came.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// The configured store and pepper (for `serve`, and for commands that work on the store
/// directly, such as signing a Telegram account in).
pub async fn connect_store(settings: &Settings) -> anyhow::Result<(Store, Pepper)> {
    let store_kind = settings.store.kind().context("store.url is not supported")?;
    let pepper = match settings.codes.pepper().map_err(anyhow::Error::msg)? {
        Some(p) => Pepper::from_secret(&p).context("codes.pepper is too short")?,
        None => {
            // Only reachable with the memory store: validation refuses Redis without a pepper.
            tracing::warn!("codes.pepper is not set: using a random pepper for this process only");
            Pepper::generate()
        }
    };
    let store = match store_kind {
        StoreKind::Memory => {
            tracing::warn!("store: memory — everything is kept in this process and lost when it stops");
            Store::from(MemoryStore::new(settings.store.ledger_limit))
        }
        StoreKind::Redis => {
            let timeout = settings.store.timeout_ms;
            let redis =
                RedisStore::connect(&settings.store.url, timeout, settings.store.ledger_limit).await.with_context(
                    || format!("cannot connect to Redis at {}", crate::config::redact_url(&settings.store.url)),
                )?;
            Store::from(redis)
        }
    };
    Ok((store, pepper))
}

async fn build_services(
    settings: Settings,
    clock: Arc<dyn Clock>,
    resolver: Arc<dyn HostResolver>,
) -> anyhow::Result<Services> {
    crate::domain::PhoneNumber::preload();
    let metrics = Arc::new(Metrics::new()?);
    let (store, pepper) = connect_store(&settings).await?;
    let store = store.observed_by(Arc::clone(&metrics));
    let concurrency = match settings.codes.hash_concurrency {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let store = Arc::new(store);
    let kind = match settings.sender.kind {
        SenderKind::Sandbox => AccountKind::Sandbox,
        SenderKind::Telegram => AccountKind::Telegram,
    };
    let role = match settings.server.role {
        Role::All => "all",
        Role::Api => "api",
        Role::Worker => "worker",
    };
    metrics.describe(env!("CARGO_PKG_VERSION"), store.kind(), kind.as_str(), role);
    metrics.store_ops(crate::store::OPERATIONS);
    if kind == AccountKind::Sandbox {
        for id in &settings.sandbox.accounts {
            if store.add_account(&SenderAccount::new(id.clone(), AccountKind::Sandbox)).await? {
                tracing::info!(account = %id, "sandbox sender account added");
            }
        }
    }
    let pacing = Pacing { interval: settings.pool.interval_ms, daily_cap: settings.pool.daily_cap };
    let holder = format!("{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let lease = settings.pool.lease;
    let pool = Pool::new(Arc::clone(&store), Arc::clone(&clock), holder, kind, pacing, lease);
    // Read receipts of Telegram accounts, recorded by the process's workers.
    let (receipts_tx, receipts_rx) = tokio::sync::mpsc::channel(10_000);
    let transport = match kind {
        AccountKind::Sandbox => Transport::Sandbox(Arc::new(SandboxInbox::new(SANDBOX_CAPACITY, &settings.sandbox))),
        AccountKind::Telegram => Transport::Telegram(Arc::new(TelegramAccounts::new(
            Arc::clone(&store),
            pepper.clone(),
            settings.sender.call_timeout,
            settings.sender.dev_peers,
            receipts_tx,
        ))),
    };
    let auth_throttle = crate::service::throttle::AuthThrottle::new(settings.limits.auth_failures, Arc::clone(&clock));
    Ok(Services {
        store,
        hasher: CodeHasher::new(HashScheme::from(&settings.codes), pepper.clone(), concurrency),
        sealer: CodeSealer::new(&pepper),
        sender: Sender::new(pool, transport, Arc::clone(&metrics)),
        metrics,
        clock,
        token_keys: TokenKeys::new(&pepper),
        callers: crate::service::CallerCache::new(settings.tokens.cache_ms),
        reports: crate::callbacks::dispatch::Dispatcher::new(&settings.callbacks, resolver)?,
        report_slots: Arc::new(tokio::sync::Semaphore::new(REPORTS_IN_FLIGHT)),
        wake: Arc::new(tokio::sync::Notify::new()),
        read_receipts: parking_lot::Mutex::new(Some(receipts_rx)),
        gauge_reads: Default::default(),
        auth_throttle,
        fruitless_lookups: Default::default(),
        settings: Arc::new(settings),
    })
}
