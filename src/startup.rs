//! Building the application from settings, and running it.

use crate::api::{self, AppState};
use crate::config::{SenderKind, Settings, StoreKind};
use crate::delivery::pool::Pool;
use crate::delivery::sandbox::SandboxInbox;
use crate::delivery::telegram::transport::TelegramAccounts;
use crate::delivery::worker::Worker;
use crate::delivery::{Sender, Transport};
use crate::domain::{AccountKind, Clock, Pacing, SenderAccount, SystemClock};
use crate::secrets::{CodeHasher, CodeSealer, Pepper, TokenKeys};
use crate::service::Services;
use crate::store::{MemoryStore, RedisStore, Store};
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
    services: Arc<Services>,
}

use crate::callbacks::dispatch::{HostResolver, SystemResolver};

/// Delivery reports one process sends at once (each host also has its own, lower limit).
const REPORTS_IN_FLIGHT: usize = 1024;

/// How long workers get to finish the job in hand when the server stops.
const WORKER_GRACE: Duration = Duration::from_secs(10);

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.server.listen)
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        Self::build_with(settings, Arc::new(SystemClock), listener).await
    }

    /// Builds on a listener that is already bound (tests bind port 0) and a given clock.
    pub async fn build_with(settings: Settings, clock: Arc<dyn Clock>, listener: TcpListener) -> anyhow::Result<Self> {
        Self::build_with_resolver(settings, clock, listener, Arc::new(SystemResolver)).await
    }

    /// As `build_with`, with the resolver that callback hosts are looked up with (tests script
    /// one to play DNS tricks).
    pub async fn build_with_resolver(
        settings: Settings,
        clock: Arc<dyn Clock>,
        listener: TcpListener,
        resolver: Arc<dyn HostResolver>,
    ) -> anyhow::Result<Self> {
        let services = Arc::new(build_services(settings, clock, resolver).await?);
        let settings = Arc::clone(&services.settings);
        let admin_token = settings.admin_token().map_err(anyhow::Error::msg)?;
        if admin_token.is_none() {
            tracing::info!("admin.token is not set: the admin API is off");
        }
        let state = web::Data::new(AppState {
            services: Arc::clone(&services),
            error_status: settings.api.error_status,
            body_limit: settings.server.body_limit,
            admin_token,
            role: settings.server.role,
        });
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new().wrap_fn(api::with_trace_id).configure(|cfg| api::configure(cfg, &state))
        })
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(2))
        .shutdown_timeout(10)
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(port, config = %settings.summary(), "verigram is listening");
        Ok(Self { port, server: server.run(), services })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> Arc<Services> {
        Arc::clone(&self.services)
    }

    /// Serves (and runs the delivery workers, by role) until SIGINT/SIGTERM or until
    /// stopped; then finishes requests in flight, and lets workers finish the job in hand.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        if self.services.settings.server.role.runs_workers() {
            workers.spawn(crate::delivery::worker::repair_indexes(Arc::clone(&self.services), stopped.clone()));
            if let Some(receipts) = self.services.read_receipts.lock().take() {
                workers.spawn(crate::delivery::worker::record_reads(
                    Arc::clone(&self.services),
                    receipts,
                    stopped.clone(),
                ));
            }
            let prefix = uuid::Uuid::new_v4().simple().to_string();
            for n in 0..self.services.settings.delivery.workers {
                let worker = Worker::new(Arc::clone(&self.services), format!("{}-{n}", &prefix[..12]));
                workers.spawn(worker.run(stopped.clone()));
            }
        }
        let served = self.server.await;
        let _ = stop.send(true);
        if tokio::time::timeout(WORKER_GRACE, async { while workers.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!("delivery workers did not stop in time; their jobs will be taken over");
        }
        served
    }

    /// A handle that stops the server (tests, embedding).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// The configured store and pepper (for `serve`, and for commands that work on the store
/// directly, such as signing a Telegram account in).
pub async fn connect_store(settings: &Settings) -> anyhow::Result<(Store, Pepper)> {
    let store_kind = settings.store_kind().context("store.url is not supported")?;
    let pepper = match settings.pepper().map_err(anyhow::Error::msg)? {
        Some(p) => p,
        None => {
            // Only reachable with the memory store: validation refuses Redis without a pepper.
            tracing::warn!("codes.pepper is not set: using a random pepper for this process only");
            Pepper::generate()
        }
    };
    let store = match store_kind {
        StoreKind::Memory => {
            tracing::warn!("store: memory — everything is kept in this process and lost when it stops");
            Store::Memory(MemoryStore::new(settings.store.ledger_limit))
        }
        StoreKind::Redis => {
            let timeout = Duration::from_millis(settings.store.timeout_ms);
            let redis =
                RedisStore::connect(&settings.store.url, timeout, settings.store.ledger_limit).await.with_context(
                    || format!("cannot connect to Redis at {}", crate::config::redact_url(&settings.store.url)),
                )?;
            Store::Redis(redis)
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
    let (store, pepper) = connect_store(&settings).await?;
    let concurrency = match settings.codes.hash_concurrency {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let store = Arc::new(store);
    let kind = match settings.sender.kind {
        SenderKind::Sandbox => AccountKind::Sandbox,
        SenderKind::Telegram => AccountKind::Telegram,
    };
    if kind == AccountKind::Sandbox {
        for id in &settings.sandbox.accounts {
            if store.add_account(&SenderAccount::new(id.clone(), AccountKind::Sandbox)).await? {
                tracing::info!(account = %id, "sandbox sender account added");
            }
        }
    }
    let pacing =
        Pacing { interval: Duration::from_millis(settings.pool.interval_ms), daily_cap: settings.pool.daily_cap };
    let holder = format!("{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let lease = Duration::from_secs(settings.pool.lease);
    let pool = Pool::new(Arc::clone(&store), Arc::clone(&clock), holder, kind, pacing, lease);
    // Read receipts of Telegram accounts, recorded by the process's workers.
    let (receipts_tx, receipts_rx) = tokio::sync::mpsc::channel(10_000);
    let transport = match kind {
        AccountKind::Sandbox => Transport::Sandbox(Arc::new(SandboxInbox::new(SANDBOX_CAPACITY, &settings.sandbox))),
        AccountKind::Telegram => Transport::Telegram(Arc::new(TelegramAccounts::new(
            Arc::clone(&store),
            pepper.clone(),
            Duration::from_secs(settings.sender.call_timeout),
            receipts_tx,
        ))),
    };
    Ok(Services {
        store,
        hasher: CodeHasher::new(settings.hash_scheme(), pepper.clone(), concurrency),
        sealer: CodeSealer::new(&pepper),
        sender: Sender::new(pool, transport),
        clock,
        token_keys: TokenKeys::new(&pepper),
        reports: crate::callbacks::dispatch::Dispatcher::new(&settings.callbacks, resolver)?,
        report_slots: Arc::new(tokio::sync::Semaphore::new(REPORTS_IN_FLIGHT)),
        wake: Arc::new(tokio::sync::Notify::new()),
        read_receipts: parking_lot::Mutex::new(Some(receipts_rx)),
        settings: Arc::new(settings),
    })
}
