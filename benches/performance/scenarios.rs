//! The verigram rows: sends, checks and revocations on one instance, then one to three API
//! nodes on one store. What each scenario asks, not how it is measured (`rows.rs`).

use crate::load::{Call, Expect, MakeCall};
use crate::rows::{HashOp, Target};
use crate::setup::{app_toml, create_tenant, server_runtime, Backing};
use crate::{Bench, MAX_ATTEMPTS, WRONG_CODE};
use anyhow::{bail, Context};
use std::net::TcpListener;
use std::sync::Arc;
use tokio::runtime::Runtime;
use verigram::config::Settings;
use verigram::domain::SystemClock;
use verigram::startup::Application;

impl Bench {
    /// One verigram instance on `backing` with `hash`: its sends, checks and revocations.
    pub fn verigram(&mut self, backing: &Backing, hash: &str) -> anyhow::Result<()> {
        let store = backing.kind;
        let settings =
            Settings::from_toml(&app_toml(&backing.url(), hash, self.opts.workers)).context("bench settings")?;
        let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
        let app = self
            .server_rt
            .block_on(Application::build_with(settings, Arc::new(SystemClock), listener))
            .with_context(|| format!("start verigram ({}, {hash})", store.name()))?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        self.server_rt.spawn(app.run_until_stopped());
        let token: Arc<str> = self.client_rt.block_on(create_tenant(&self.client, &base))?.into();
        let mut probes = backing.probes()?;
        let argon2 = hash == "argon2id";
        let (send_target, check_target) = if argon2 {
            (Target::Hashing(0.7, HashOp::Hash), Target::Hashing(0.7, HashOp::Verify))
        } else {
            (Target::OneCall(0.6), Target::OneCall(0.6))
        };

        let send = sends(&format!("{base}/sendVerificationMessage"), &token);
        self.ids.clear();
        self.scenario(
            "verigram",
            format!("send, {hash}"),
            Some(store),
            send_target,
            &send,
            Expect::NewRequest,
            None,
            &mut probes,
        );
        let ids: Arc<[String]> = std::mem::take(&mut self.ids).into();
        if ids.is_empty() {
            bail!("{}/{hash}: no send succeeded", store.name());
        }
        let check_url: Arc<str> = format!("{base}/checkVerificationStatus").into();
        let wrong: MakeCall = {
            let (ids, url, token) = (Arc::clone(&ids), Arc::clone(&check_url), Arc::clone(&token));
            Arc::new(move |i| {
                (i < ids.len() * MAX_ATTEMPTS).then(|| Call {
                    url: Arc::clone(&url),
                    token: Arc::clone(&token),
                    body: format!("request_id={}&code={WRONG_CODE}", ids[i % ids.len()]),
                })
            })
        };
        let name = format!("check, wrong code, {hash}");
        let limit = Some(ids.len() * MAX_ATTEMPTS);
        self.scenario("verigram", name, Some(store), check_target, &wrong, Expect::CodeInvalid, limit, &mut probes);
        if !argon2 {
            let plain: MakeCall = {
                let (ids, url, token) = (Arc::clone(&ids), Arc::clone(&check_url), Arc::clone(&token));
                Arc::new(move |i| {
                    Some(Call {
                        url: Arc::clone(&url),
                        token: Arc::clone(&token),
                        body: format!("request_id={}", ids[i % ids.len()]),
                    })
                })
            };
            let target = Target::OneCall(0.8);
            self.scenario(
                "verigram",
                "check, no code".into(),
                Some(store),
                target,
                &plain,
                Expect::Ok,
                None,
                &mut probes,
            );
            let revoke: MakeCall = {
                let (ids, url, token) = (
                    Arc::clone(&ids),
                    Arc::<str>::from(format!("{base}/revokeVerificationMessage")),
                    Arc::clone(&token),
                );
                Arc::new(move |i| {
                    ids.get(i).map(|id| Call {
                        url: Arc::clone(&url),
                        token: Arc::clone(&token),
                        body: format!("request_id={id}"),
                    })
                })
            };
            let limit = Some(ids.len());
            self.scenario(
                "verigram",
                "revoke".into(),
                Some(store),
                Target::None,
                &revoke,
                Expect::Ok,
                limit,
                &mut probes,
            );
        }
        self.server_rt.block_on(handle.stop(false));
        Ok(())
    }

    /// 1, 2 and 3 API nodes (each its own runtime and actix workers) on one store, the load
    /// spread over them: sends with `hmac-sha256` and status checks without a code.
    pub fn nodes(&mut self, backing: &Backing) -> anyhow::Result<()> {
        let mut nodes: Vec<(Runtime, actix_web::dev::ServerHandle, String)> = Vec::new();
        let mut token: Option<Arc<str>> = None;
        let mut probes = backing.probes()?;
        for n in 1..=3 {
            let rt = server_runtime(&format!("bench-node-{n}"))?;
            let settings = Settings::from_toml(&app_toml(&backing.url(), "hmac-sha256", self.opts.workers))
                .context("bench settings")?;
            let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
            let app = rt.block_on(Application::build_with(settings, Arc::new(SystemClock), listener))?;
            let base = format!("http://127.0.0.1:{}", app.port());
            let handle = app.handle();
            rt.spawn(app.run_until_stopped());
            if token.is_none() {
                token = Some(self.client_rt.block_on(create_tenant(&self.client, &base))?.into());
            }
            nodes.push((rt, handle, base));
            let token = token.clone().context("a tenant")?;
            let bases: Vec<String> = nodes.iter().map(|(_, _, b)| b.clone()).collect();
            let urls: Arc<[Arc<str>]> =
                bases.iter().map(|b| Arc::from(format!("{b}/sendVerificationMessage"))).collect();
            let send: MakeCall = {
                let token = Arc::clone(&token);
                Arc::new(move |i| {
                    Some(Call {
                        url: Arc::clone(&urls[i % urls.len()]),
                        token: Arc::clone(&token),
                        body: format!("phone_number=4479111{:05}&code_length=6", i % 100_000),
                    })
                })
            };
            self.ids.clear();
            let name = format!("{n} node(s): send, hmac-sha256");
            self.scenario(
                "nodes",
                name,
                Some(backing.kind),
                Target::None,
                &send,
                Expect::NewRequest,
                None,
                &mut probes,
            );
            let ids: Arc<[String]> = std::mem::take(&mut self.ids).into();
            let urls: Arc<[Arc<str>]> =
                bases.iter().map(|b| Arc::from(format!("{b}/checkVerificationStatus"))).collect();
            let plain: MakeCall = Arc::new(move |i| {
                (!ids.is_empty()).then(|| Call {
                    url: Arc::clone(&urls[i % urls.len()]),
                    token: Arc::clone(&token),
                    body: format!("request_id={}", ids[i % ids.len()]),
                })
            });
            let name = format!("{n} node(s): check, no code");
            self.scenario("nodes", name, Some(backing.kind), Target::None, &plain, Expect::Ok, None, &mut probes);
        }
        for (rt, handle, _) in nodes {
            rt.block_on(handle.stop(false));
        }
        Ok(())
    }
}

/// Sends of a generated six-digit code to 100,000 UK numbers in turn.
fn sends(url: &str, token: &Arc<str>) -> MakeCall {
    let (url, token): (Arc<str>, Arc<str>) = (url.into(), Arc::clone(token));
    Arc::new(move |i| {
        Some(Call {
            url: Arc::clone(&url),
            token: Arc::clone(&token),
            body: format!("phone_number=4479111{:05}&code_length=6", i % 100_000),
        })
    })
}
