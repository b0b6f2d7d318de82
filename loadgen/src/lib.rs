//! `sluice-loadgen`: drives any Kafka -> WebSocket bridge with plain Kafka
//! and plain WebSocket clients, and reports what it measured.
//!
//! - **fanout**: N clients over C channels (`--ws-url` template with
//!   `{channel}`); a producer thread sends stamped records keyed by channel
//!   name on a fixed schedule (open loop) or as fast as delivery allows;
//!   each client checks it got every record of its channel exactly once, in
//!   order, and records the latency from the record's *intended* send time
//!   (no coordinated omission).
//! - **inbound**: clients send seed 002 envelopes and time the ACKs.
//! - **rooms**: one client per room sends, every member checks it got each
//!   message once and in order (over one server or a cluster's nodes).
//! - **idle**: clients connect and hold; with `--server-pid`, the server's
//!   RSS per connection.
//! - **topic**: creates the topic.
//!
//! [`run`] does it all and returns a [`Report`]; the binary prints
//! [`Report::summary`] on stderr and [`Report::to_json`] on stdout.

pub mod args;
pub mod fanout;
pub mod inbound;
pub mod payload;
pub mod producer;
pub mod report;
pub mod rooms;
pub mod stats;
pub mod ws;

use anyhow::{Context as _, Result, bail};

pub use args::{Args, Mode, Rate};
pub use report::Report;

/// The tokio worker threads a run uses.
pub fn worker_threads(args: &Args) -> usize {
    args.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1)
}

/// Runs the load `args` describe, on a runtime of its own (call it from
/// plain, non-async code).
pub fn run(args: &Args) -> Result<Report> {
    if args.mode != Mode::Topic && args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if !args.duration.is_finite() || args.duration < 0.0 {
        bail!("--duration must be a non-negative number of seconds");
    }
    let nofile = stats::raise_nofile_limit();
    if let Some(limit) = nofile
        && (args.clients as u64) + 64 > limit
    {
        eprintln!(
            "warning: {} clients but the open-file limit is {limit}: raise it with `ulimit -n`",
            args.clients
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(args))
        .thread_name("loadgen")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let mut report = runtime.block_on(async {
        match args.mode {
            Mode::Fanout => fanout::run(args, true).await,
            Mode::Idle => fanout::run(args, false).await,
            Mode::Inbound => inbound::run(args).await,
            Mode::Rooms => rooms::run(args).await,
            Mode::Topic => {
                let outcome =
                    producer::create_topic(&args.bootstrap, &args.topic, args.partitions).await?;
                let mut report = Report::new(args);
                report.topic = Some(outcome);
                Ok(report)
            }
        }
    })?;
    // Client connections may still be closing: do not wait for them.
    runtime.shutdown_background();
    report.nofile_limit = nofile;
    Ok(report)
}
