//! The `verigram` command line. `serve` and `config check` work on a configuration; the admin
//! subcommands are clients of a running server's admin API, so they work with either store.

mod admin_client;

use crate::config::Settings;
use crate::startup::Application;
use admin_client::AdminClient;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "verigram", version, about = "Self-hosted verification codes over the Telegram Gateway API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the delivery workers (or one of them, with --role).
    Serve {
        /// Address to listen on, overriding server.listen.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// What this process does, overriding server.role.
        #[arg(long, value_enum)]
        role: Option<crate::config::Role>,
        /// Configuration file over the compiled-in defaults.
        #[arg(long, env = "VERIGRAM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI 3.1 document of the HTTP API (the one served at /openapi.json).
    Openapi,
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage tenants (through the admin API of a running server).
    Tenant {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's API tokens (through the admin API).
    Token {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Add or take credit (through the admin API).
    Balance {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: BalanceCommand,
    },
    /// Which rate limits and budgets apply to a send, and whether it would pass now (through
    /// the admin API).
    Limits {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: LimitsCommand,
    },
    /// A tenant's delivery reports that exhausted their retries (through the admin API).
    Report {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Manage the pool of sender accounts (through the admin API).
    Sender {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: SenderCommand,
    },
    /// Show a tenant's charges, refunds and credits, newest first (through the admin API).
    Ledger {
        #[command(flatten)]
        server: ServerArgs,
        /// Tenant id.
        tenant: String,
        /// How many lines.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration; print a summary or every problem.
    Check {
        #[arg(long, env = "VERIGRAM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the compiled-in default configuration (every key, documented).
    Defaults,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Base URL of the running verigram server.
    #[arg(long, global = true, env = "VERIGRAM_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Admin token (better from the environment: VERIGRAM_ADMIN_TOKEN).
    #[arg(long, global = true, env = "VERIGRAM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints it with its first API token (shown only once).
    Create {
        #[arg(long)]
        name: String,
        /// Opening balance in credits, e.g. 10 or 0.5.
        #[arg(long)]
        balance: Option<String>,
        /// The tenant's own phone number: sends to it are free.
        #[arg(long)]
        phone_number: Option<String>,
        /// Price per message in credits, overriding the server's price table.
        #[arg(long)]
        price: Option<String>,
        /// Wrong codes allowed per request (1-10).
        #[arg(long)]
        max_attempts: Option<u8>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show { tenant: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue another token for a tenant.
    Issue {
        tenant: String,
        /// Allowed client addresses or ranges (repeatable), e.g. 203.0.113.0/24.
        #[arg(long = "ip")]
        ip_allow: Vec<String>,
    },
    /// Issue a successor; the old token keeps working for the overlap.
    Rotate {
        tenant: String,
        token_id: String,
        /// Seconds the old token keeps working (default: tokens.rotation_overlap).
        #[arg(long)]
        overlap: Option<u64>,
    },
    /// Revoke a token at once.
    Revoke { tenant: String, token_id: String },
    /// List a tenant's tokens.
    List { tenant: String },
}

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// For a send of `tenant` to a number (from an address, with a token): each limit and
    /// budget, where it stands, and whether the send would pass now and why not.
    Explain {
        tenant: String,
        #[arg(long)]
        phone_number: String,
        /// The client address the send would come from.
        #[arg(long)]
        ip: Option<String>,
        /// The id of the API token the send would use.
        #[arg(long)]
        token_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// List a tenant's dead letters, newest first.
    Dead { tenant: String },
    /// Send a dead letter again, now; it leaves the list once the receiver answers 200.
    Replay { tenant: String, id: String },
}

#[derive(Debug, Subcommand)]
pub enum SenderCommand {
    /// List sender accounts with their state, reason and counters.
    List,
    /// Add a simulated account to the sandbox pool.
    AddSandbox { id: String },
    /// Register a Telegram user account (then sign it in with `sender login`).
    Add {
        id: String,
        /// The api_id of the app registered at my.telegram.org.
        #[arg(long)]
        api_id: i32,
        /// The account's phone number.
        #[arg(long)]
        phone_number: String,
    },
    /// The delivery jobs not yet done, in all and per tenant: queued (waiting for an account
    /// and their tenant's turn, or in a worker's hands), and waiting (put off to retry after a
    /// failure).
    Backlog,
    /// Add an account of a local development peer (`verigram-dev-telegram`): active at once,
    /// no login (the server needs sender.kind = "telegram").
    AddDev {
        id: String,
        /// The account's phone number, as the peer lists it.
        #[arg(long)]
        phone_number: String,
        /// The peer's address.
        #[arg(long, default_value = "127.0.0.1:4430")]
        peer: String,
    },
    /// Take an account out of the pool.
    Pause {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Put an account back into the pool (also after a flood wait, quarantine or ban).
    Resume { id: String },
    /// Remove an account from the pool.
    Remove { id: String },
    /// Sign a Telegram account in (login code, then the 2FA password; or a QR code). Works on
    /// the configured Redis store directly (not through the admin API); the api_hash comes from
    /// VERIGRAM_TELEGRAM_API_HASH or is asked for.
    Login {
        id: String,
        #[arg(long, env = "VERIGRAM_CONFIG")]
        config: Option<PathBuf>,
        /// Show a QR code to scan with a phone where the account is signed in (Settings →
        /// Devices → Link Desktop Device) instead of asking for a login code.
        #[arg(long)]
        qr: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BalanceCommand {
    /// Add credit (a negative amount takes it; never below zero).
    Add {
        tenant: String,
        /// Credits, e.g. 25 or 0.75 (use `-- -5` to take).
        #[arg(allow_hyphen_values = true)]
        amount: String,
        #[arg(long)]
        note: Option<String>,
    },
}

/// Runs one command; the binary's `main` is only this and error printing.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen, role, config } => serve(listen, role, config).await,
        Command::Config { command: ConfigCommand::Check { config } } => {
            let settings = Settings::load(config.as_deref())?;
            println!("configuration OK: {}", settings.summary());
            Ok(())
        }
        Command::Openapi => {
            println!("{}", crate::api::openapi_json()?);
            Ok(())
        }
        Command::Config { command: ConfigCommand::Defaults } => {
            print!("{}", crate::config::DEFAULT_CONFIG);
            Ok(())
        }
        Command::Tenant { server, command } => tenant(AdminClient::new(&server)?, command).await,
        Command::Token { server, command } => token(AdminClient::new(&server)?, command).await,
        Command::Balance { server, command: BalanceCommand::Add { tenant, amount, note } } => {
            let client = AdminClient::new(&server)?;
            let amount = number(&amount)?;
            client.print_post(&format!("tenants/{tenant}/balance"), json!({ "amount": amount, "note": note })).await
        }
        Command::Sender { command: SenderCommand::Login { id, config, qr }, .. } => sender_login(&id, config, qr).await,
        Command::Sender { server, command } => sender(AdminClient::new(&server)?, command).await,
        Command::Limits { server, command: LimitsCommand::Explain { tenant, phone_number, ip, token_id } } => {
            let mut body = json!({ "phone_number": phone_number });
            if let Some(ip) = ip {
                body["ip"] = json!(ip);
            }
            if let Some(token_id) = token_id {
                body["token_id"] = json!(token_id);
            }
            AdminClient::new(&server)?.print_post(&format!("tenants/{tenant}/limits/explain"), body).await
        }
        Command::Report { server, command: ReportCommand::Dead { tenant } } => {
            AdminClient::new(&server)?.print_get(&format!("tenants/{tenant}/reports/dead")).await
        }
        Command::Report { server, command: ReportCommand::Replay { tenant, id } } => {
            AdminClient::new(&server)?
                .print_post(&format!("tenants/{tenant}/reports/dead/{id}/replay"), json!({}))
                .await
        }
        Command::Ledger { server, tenant, limit } => {
            AdminClient::new(&server)?.print_get(&format!("tenants/{tenant}/ledger?limit={limit}")).await
        }
    }
}

async fn serve(
    listen: Option<SocketAddr>,
    role: Option<crate::config::Role>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut settings = Settings::load(config.as_deref())?;
    if let Some(addr) = listen {
        settings.server.listen = addr;
    }
    if let Some(role) = role {
        settings.server.role = role;
    }
    crate::telemetry::init(&settings.log);
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

/// Amounts go to the server as decimal strings, so no float ever touches money.
fn number(text: &str) -> anyhow::Result<String> {
    crate::domain::Credits::parse(text.trim())
        .map(|c| c.to_string())
        .map_err(|_| anyhow::anyhow!("{text:?} is not an amount of credits (e.g. 10 or 0.25)"))
}

async fn tenant(client: AdminClient, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { name, balance, phone_number, price, max_attempts } => {
            let body = json!({
                "name": name,
                "balance": balance.as_deref().map(number).transpose()?,
                "phone_number": phone_number,
                "price": price.as_deref().map(number).transpose()?,
                "max_attempts": max_attempts,
            });
            client.print_post("tenants", body).await
        }
        TenantCommand::List => client.print_get("tenants").await,
        TenantCommand::Show { tenant } => client.print_get(&format!("tenants/{tenant}")).await,
    }
}

async fn token(client: AdminClient, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue { tenant, ip_allow } => {
            client.print_post(&format!("tenants/{tenant}/tokens"), json!({ "ip_allow": ip_allow })).await
        }
        TokenCommand::Rotate { tenant, token_id, overlap } => {
            client
                .print_post(&format!("tenants/{tenant}/tokens/{token_id}/rotate"), json!({ "overlap": overlap }))
                .await
        }
        TokenCommand::Revoke { tenant, token_id } => {
            client.print_delete(&format!("tenants/{tenant}/tokens/{token_id}")).await
        }
        TokenCommand::List { tenant } => client.print_get(&format!("tenants/{tenant}/tokens")).await,
    }
}

async fn sender(client: AdminClient, command: SenderCommand) -> anyhow::Result<()> {
    match command {
        SenderCommand::List => client.print_get("senders").await,
        SenderCommand::Backlog => client.print_get("delivery/backlog").await,
        SenderCommand::AddDev { id, phone_number, peer } => {
            let body = json!({ "id": id, "kind": "telegram", "phone_number": phone_number, "dev_peer": peer });
            client.print_post("senders", body).await
        }
        SenderCommand::AddSandbox { id } => client.print_post("senders", json!({ "id": id, "kind": "sandbox" })).await,
        SenderCommand::Add { id, api_id, phone_number } => {
            client
                .print_post(
                    "senders",
                    json!({ "id": id, "kind": "telegram", "api_id": api_id, "phone_number": phone_number }),
                )
                .await
        }
        SenderCommand::Pause { id, note } => {
            client.print_post(&format!("senders/{id}/pause"), json!({ "note": note })).await
        }
        SenderCommand::Resume { id } => client.print_post(&format!("senders/{id}/resume"), json!({})).await,
        SenderCommand::Remove { id } => client.print_delete(&format!("senders/{id}")).await,
        SenderCommand::Login { id, config, qr } => sender_login(&id, config, qr).await,
    }
}

async fn sender_login(id: &str, config: Option<PathBuf>, qr: bool) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref())?;
    if settings.store.kind() != Some(crate::config::StoreKind::Redis) {
        anyhow::bail!("signing an account in needs the Redis store the server uses (store.url = \"redis://…\"): the memory store is gone when this command ends");
    }
    let (store, pepper) = crate::startup::connect_store(&settings).await?;
    let api_hash = match std::env::var("VERIGRAM_TELEGRAM_API_HASH") {
        Ok(hash) if !hash.is_empty() => hash,
        _ => ask_secret("api_hash of the app (my.telegram.org): ")?,
    };
    use crate::delivery::telegram::login::{sign_in, Method};
    let method = if qr { Method::Qr } else { Method::Code };
    sign_in(std::sync::Arc::new(store), &pepper, id, &api_hash, method, &mut TerminalPrompt).await?;
    println!("{id} is signed in and active in the pool");
    Ok(())
}

/// Asks on the terminal (standard input).
struct TerminalPrompt;

impl crate::delivery::telegram::login::Prompt for TerminalPrompt {
    fn code(&mut self) -> anyhow::Result<String> {
        // A login code is a key to the account while it is valid: typed without echo too.
        ask_secret("login code Telegram sent to the account: ")
    }

    fn show_qr(&mut self, link: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let code = qrcode::QrCode::new(link.as_bytes())?;
        let picture = code.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build();
        println!("{picture}\nScan it with a phone where the account is signed in (Settings → Devices → Link Desktop Device), or open:\n{link}");
        std::io::stdout().flush()?;
        Ok(())
    }

    fn password(&mut self, hint: Option<&str>) -> anyhow::Result<String> {
        ask_secret(&format!(
            "two-step verification password{}: ",
            hint.map(|h| format!(" (hint: {h})")).unwrap_or_default()
        ))
    }
}

/// Asks for a secret: on a terminal without echoing what is typed (nor leaving it in the
/// scrollback); from a pipe (scripts, tests) as a line.
fn ask_secret(question: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password(question)?.trim().to_owned())
    } else {
        ask(question)
    }
}

fn ask(question: &str) -> anyhow::Result<String> {
    use std::io::Write;
    print!("{question}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}
