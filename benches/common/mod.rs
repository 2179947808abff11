//! What the in-process benchmarks share: their pepper, a tenant rich enough never to run out,
//! whether this is a full run, and where the tables go. Included with `#[path]`.
#![allow(dead_code)]

use std::sync::Arc;
use verigram::service::{Caller, NewTenant, Services};

/// The binary's allocator (`src/main.rs`), so what is measured here allocates as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const PEPPER: &str = "bench-pepper-0123456789abcdef0123456789abcdef";

/// Every rate limit off: the benchmarks measure the machinery, not the limits (those have
/// `benches/limits.rs`).
pub const LIMITS_OFF: &str = "[limits]\n\
    tenant = { rate = 0, per = 1, burst = 1 }\n\
    tenant_daily = { rate = 0, per = 1, burst = 1 }\n\
    token = { rate = 0, per = 1, burst = 1 }\n\
    phone = { rate = 0, per = 1, burst = 1 }\n\
    country = { rate = 0, per = 1, burst = 1 }\n\
    ip = { rate = 0, per = 1, burst = 1 }\n\
    wrong_checks = { rate = 0, per = 1, burst = 1 }\n";

/// `cargo bench` passes `--bench`; without it (or with `--test`) a benchmark is a smoke run.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench") && !std::env::args().any(|a| a == "--test")
}

/// A tenant with a billion credits, and its caller (from `client`).
pub async fn rich_caller(services: &Arc<Services>, client: Option<std::net::IpAddr>) -> anyhow::Result<Caller> {
    let new = NewTenant {
        name: "bench".into(),
        balance: verigram::domain::Credits::parse("1000000000").map_err(|_| anyhow::anyhow!("credits"))?,
        settings: Default::default(),
    };
    let (_, token, _) = services.create_tenant(new).await?;
    Ok(services.authenticate(&token, client, client).await?)
}

/// Prints the table and, on a full run, keeps it in `target/bench-results/<name>.md`.
pub fn publish(name: &str, report: &str) -> anyhow::Result<()> {
    println!("{report}");
    if full_run() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("{name}.md")), report)?;
    }
    Ok(())
}

/// A send of a generated 6-digit code to the `i`-th of 100,000 UK numbers.
pub fn send_command(i: usize) -> anyhow::Result<verigram::service::SendCommand> {
    use verigram::domain::{CodeLength, PhoneNumber};
    Ok(verigram::service::SendCommand {
        phone: PhoneNumber::parse(&format!("4479111{:05}", i % 100_000)).map_err(|_| anyhow::anyhow!("phone"))?,
        code: verigram::service::CodeSpec::Generate(CodeLength::parse("6").map_err(|_| anyhow::anyhow!("length"))?),
        request_id: None,
        sender_username: None,
        callback_url: None,
        payload: None,
        ttl: None,
    })
}
