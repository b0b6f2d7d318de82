//! `sluice run FILE`: checks the pipeline file, starts everything it
//! describes, prints where it serves, and runs until SIGINT/SIGTERM.
//! SIGHUP, a change to the file (unless `--no-watch`) or `POST /reload`
//! on the admin API reload it live.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::checked;
use anyhow::Context as _;
use sluice_runtime::admin::{Reloads, Trigger};
use sluice_runtime::config::Config;
use sluice_runtime::plugin::PluginHost;
use sluice_runtime::server;

/// Arguments of `sluice run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file, e.g. `pipeline.toml`.
    pub file: PathBuf,
    /// Do not reload when the file or a plugin file changes (SIGHUP and
    /// the admin API still reload).
    #[arg(long)]
    pub no_watch: bool,
}

/// Runs until a signal; exit 1 if the file is invalid or the start fails.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let host = checked::host_for(&args.file)?;
    let Ok(config) = checked::config(&args.file, &host, "; nothing started") else {
        return Ok(ExitCode::FAILURE);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sluice-io")
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(serve(&config, &host, args));
    // A consumer thread still waiting for an unreachable broker must not
    // hold the exit (dropping the runtime would wait for it).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: &Config, host: &PluginHost, args: &Args) -> anyhow::Result<()> {
    let running = server::start(config, host).await?;
    let broker = running.embedded_broker().await;
    // Listening for SIGHUP, SIGTERM and SIGINT and watching before `ready`:
    // a change made after it is never missed, and no signal kills the
    // process the default way (without close frames) once it said ready.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    let stops = [
        tokio::signal::unix::SignalKind::terminate(),
        tokio::signal::unix::SignalKind::interrupt(),
    ]
    .map(|kind| tokio::signal::unix::signal(kind).ok());
    let watch = if args.no_watch {
        None
    } else {
        match server::FileWatch::start(config, running.reloads()) {
            Ok(watch) => Some(watch),
            Err(error) => {
                tracing::warn!(%error, "Cannot watch the pipeline file; reload with SIGHUP or the admin API.");
                None
            }
        }
    };
    let mut out = std::io::stdout().lock();
    if let Some(broker) = broker {
        writeln!(
            out,
            "embedded Kafka broker at {broker} (produce to it with any Kafka client)"
        )?;
    }
    for p in &config.pipelines {
        if let Some((_, address)) = running
            .bound
            .iter()
            .find(|(name, _)| *name == p.serving.listener)
        {
            let mut flows = Vec::new();
            if let Some(source) = &p.source {
                flows.push(format!("<- topics {}", source.topics.join(", ")));
            }
            if let Some(sink) = &p.serving.sink {
                flows.push(format!("-> topic {}", sink.topic));
            }
            if let Some(handler) = &p.serving.handler {
                flows.push(format!("handler {}", handler.name));
            }
            writeln!(
                out,
                "pipeline `{}`: ws://{address}{} {}",
                p.name,
                p.serving.path,
                flows.join(", ")
            )?;
        }
    }
    if config.admin.is_some()
        // The admin API's entry comes after every listener's (one may be
        // named `admin` too).
        && let Some((_, address)) = running.bound.iter().rev().find(|(name, _)| name == "admin")
    {
        writeln!(out, "admin API: http://{address}")?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    let follow = |config: &Config| {
        if let Some(watch) = &watch {
            watch.follow(config);
        }
    };
    tokio::select! {
        () = wait_for_signal(stops) => {}
        () = watch_consumers(&running) => {}
        () = running.serve_reloads(&args.file, host, follow) => {}
        () = hangups(hangup, running.reloads()) => {}
    }
    tracing::info!("Shutting down: closing connections with 1001 and committing consumed offsets.");
    running.shutdown().await;
    Ok(())
}

/// Says loudly when a pipeline's consumer ends (a `stop` poison policy, a
/// fatal client error), once per pipeline; the other pipelines keep going.
/// Never returns.
async fn watch_consumers(running: &server::Running) {
    let mut reported = std::collections::HashSet::new();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        for (pipeline, reason) in running.failed_consumers().await {
            if reported.insert(pipeline.clone()) {
                tracing::error!(%pipeline, %reason, "Pipeline consumer ended: its clients get no more records until sluice restarts.");
            }
        }
    }
}

/// Asks for a reload on every SIGHUP. Never returns.
async fn hangups(mut hangup: tokio::signal::unix::Signal, reloads: Reloads) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the pipeline file.");
        reloads.ask(Trigger::Signal);
    }
    std::future::pending().await
}

/// Waits for SIGTERM or SIGINT, listened for since before `ready`.
async fn wait_for_signal([term, int]: [Option<tokio::signal::unix::Signal>; 2]) {
    let received = |signal: Option<tokio::signal::unix::Signal>| async move {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = received(term) => {}
        () = received(int) => {}
    }
}
