//! `ldae`: latent denoising autoencoder pipelines from the command line.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use ldae::{cli, commands};

mod allocator;

fn main() -> ExitCode {
    // Output piped into `head` ends the process quietly once the reader is gone, as with other
    // Unix tools: Rust ignores SIGPIPE, and the next print panicked with a backtrace.
    // SAFETY: restores one signal's default action before any other thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A cap the kernels cannot read is an error before anything runs (they would panic later).
    if let Err(e) = ldae_operators::cpu::Isa::cap_from_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // `--version` also says which JPEG decoder this process uses (known only at run time).
    let matches = cli::Cli::command()
        .long_version(&*Box::leak(cli::long_version().into_boxed_str()))
        .get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LDAE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if cli.quiet { "warn" } else { "info" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
    ldae::flags::set_quiet(cli.quiet);
    // Still one thread here.
    if matches!(cli.command, cli::Command::Probe(_)) {
        allocator::return_freed_memory();
    } else {
        allocator::keep_freed_memory();
    }
    if matches!(cli.command, cli::Command::Pca(_)) {
        allocator::without_huge_pages();
    }
    // `ldae status` exits 1 while the job is not complete, so a script can wait on it.
    let waits_on_status = matches!(cli.command, cli::Command::Status { .. });
    match commands::run(cli) {
        Ok(report) if waits_on_status && report["complete"] == false => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable line: the error and its causes.
            eprintln!("error: {}", ldae_pipeline::error::describe(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
