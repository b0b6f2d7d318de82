//! `sluice`: runs and checks Sluice pipeline files. See `sluice --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
