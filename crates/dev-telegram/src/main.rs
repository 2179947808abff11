//! `verigram-dev-telegram`: the local Telegram alone, for a person to watch messages arrive.
//! Point a `verigram serve` with `sender.kind = "telegram"` at it with `verigram sender add-dev`.

use clap::Parser;
use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;
use verigram_dev_telegram::{PeerConfig, SimUser, TelegramPeer};

/// The accounts offered when none are named (UK numbers set aside for drama).
const DEV_ACCOUNTS: [&str; 4] = ["+447700900001", "+447700900002", "+447700900003", "+447700900004"];

/// Run a local Telegram (an MTProto server on loopback) for development: sender accounts and
/// simulated users, every message a user receives in this process's log.
#[derive(Debug, Parser)]
#[command(name = "verigram-dev-telegram", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4430")]
    listen: SocketAddr,
    /// A sender account's phone number (repeat for more); four by default.
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// Simulated users read each message this many seconds after it arrives.
    #[arg(long)]
    reads_after: Option<u64>,
    /// Only these numbers are Telegram users (repeat); by default every number is.
    #[arg(long = "user")]
    users: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let accounts = if args.accounts.is_empty() { DEV_ACCOUNTS.map(String::from).to_vec() } else { args.accounts };
    let config = PeerConfig {
        accounts: accounts.clone(),
        auto_users: args.users.is_empty(),
        users: args.users.iter().map(|u| SimUser::new(u)).collect(),
        reads_after: args.reads_after.map(std::time::Duration::from_secs),
    };
    let peer = TelegramPeer::start(args.listen, config).await?;
    let addr = peer.addr();
    println!("verigram-dev-telegram is listening on {addr}");
    println!("add its accounts to a server running with sender.kind = \"telegram\" and sender.dev_peers = true:");
    for (i, phone) in accounts.iter().enumerate() {
        println!("  verigram sender add-dev dev{} --phone-number {phone} --peer {addr}", i + 1);
    }
    println!("messages the simulated users receive are logged here; Ctrl-C stops");
    tokio::signal::ctrl_c().await?;
    peer.stop().await;
    Ok(())
}
