//! The container image's entry point: one pipeline service per run.
use std::process::ExitCode;

use clap::Parser;

/// The kiosk pipeline services (the `test-kafka-istio-mongo` chart runs one per pod).
#[derive(Parser, Debug)]
#[command(name = "kiosk-services", version, about)]
struct Cli {
    #[command(subcommand)]
    command: kiosk_services::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    kiosk_services::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kiosk-services: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kiosk-services: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
