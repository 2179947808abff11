//! Sends whose `callback_url` names a host DNS cannot answer for: one that never answers, and
//! one that answers "not found" at once (a local DNS server, `callbacks.dns_servers`), each
//! with a new name per send. Held to half of the same instance's sends without a callback,
//! measured right before and after each row (issue 20): a tenant's DNS trouble must not make
//! its sends crawl.

use crate::load::{Call, Expect, MakeCall};
use crate::rows::{StoreKind, Target};
use crate::setup::{app_toml, create_tenant, Backing};
use crate::Bench;
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use verigram::config::Settings;
use verigram::domain::SystemClock;
use verigram::startup::Application;
use verigram_testkit::dns::{Answer, DnsServer};

impl Bench {
    pub fn callback_dns(&mut self, backing: &Backing) -> anyhow::Result<()> {
        let dns =
            DnsServer::start(
                |name| {
                    if name.ends_with(".silent.example.test") {
                        Answer::Silent
                    } else {
                        Answer::NotFound
                    }
                },
            )
            .context("a local DNS server")?;
        let toml = format!(
            "{}\n[callbacks]\ndns_servers = [\"{}\"]\n",
            app_toml(&backing.url(), "hmac-sha256", self.opts.workers),
            dns.addr
        );
        let settings = Settings::from_toml(&toml).context("bench settings")?;
        let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
        let app = self
            .server_rt
            .block_on(Application::build_with(settings, Arc::new(SystemClock), listener))
            .context("start verigram (callback DNS)")?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        self.server_rt.spawn(app.run_until_stopped());
        let url: Arc<str> = format!("{base}/sendVerificationMessage").into();
        let mut probes = backing.probes()?;
        for (name, zone) in [("never answers", "silent"), ("not found", "missing")] {
            // A tenant of its own per row: what one tenant's DNS trouble costs is that tenant's.
            let token: Arc<str> = self.client_rt.block_on(create_tenant(&self.client, &base))?.into();
            self.beside_sends = Some(callback_sends(&url, &token, None));
            let sends = callback_sends(&url, &token, Some(zone));
            let name = format!("send, callback host's DNS {name}, hmac-sha256");
            let store = Some(StoreKind::Memory);
            self.scenario("verigram", name, store, Target::Sends(0.5), &sends, Expect::NewRequest, None, &mut probes);
        }
        self.beside_sends = None;
        self.ids.clear();
        self.server_rt.block_on(handle.stop(false));
        Ok(())
    }
}

/// Sends of a generated code to UK numbers in turn; with `zone`, each names a callback host of
/// its own under it (`https://h<n>.<zone>.example.test/cb`).
fn callback_sends(url: &Arc<str>, token: &Arc<str>, zone: Option<&'static str>) -> MakeCall {
    let (url, token) = (Arc::clone(url), Arc::clone(token));
    Arc::new(move |i| {
        let callback =
            zone.map(|z| format!("&callback_url=https%3A%2F%2Fh{i}.{z}.example.test%2Fcb")).unwrap_or_default();
        Some(Call {
            url: Arc::clone(&url),
            token: Arc::clone(&token),
            body: format!("phone_number=4479111{:05}&code_length=6{callback}", i % 100_000),
        })
    })
}
