//! The `sluice-loadgen` binary: see the library for what it measures.

use clap::Parser as _;
use sluice_loadgen::{Args, run};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            eprint!("{}", report.summary());
            let json = report.to_json();
            println!("{json}");
            if let Some(path) = &args.json
                && let Err(error) = std::fs::write(path, format!("{json}\n"))
            {
                eprintln!("error: writing {}: {error}", path.display());
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
