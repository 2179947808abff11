use clap::Parser;
use verigram::cli::{self, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verigram: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
