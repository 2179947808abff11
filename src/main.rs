use clap::Parser;

/// mimalloc rather than the C library's allocator: a request allocates and frees many small
/// buffers across threads, where it costs about half as much CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
