//! Live reload: re-reads the pipeline file and applies it to the running
//! process (see [`super::live`]). A SIGHUP, a change to the file or to a
//! plugin it loads, and `POST /reload` on the admin API all ask here;
//! reloads run one at a time, and every outcome is logged, counted in
//! `config_reloads_total{result}` and kept for `GET /reload`.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use super::live::{Live, wants_embedded};
use crate::admin::{ReloadOutcome, ReloadRequest, Reloads};
use crate::config::{self, Config};
use crate::plugin::PluginHost;

/// Runs the reloads asked for on `queue` against `live`, one at a time,
/// reading `file` each time. Returns when every [`Reloads`] is dropped.
pub async fn serve(
    live: &Mutex<Live>,
    file: &Path,
    host: &PluginHost,
    reloads: &Reloads,
    mut queue: mpsc::Receiver<ReloadRequest>,
    on_success: impl Fn(&Config),
) {
    let mut generation = 0;
    while let Some(request) = queue.recv().await {
        let trigger = request.trigger();
        let started = std::time::Instant::now();
        let result = reload(live, file, host).await;
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let ok = result.is_ok();
        if ok {
            generation += 1;
        }
        crate::metrics::global().reloaded(ok);
        let (changes, error) = match result {
            Ok((changes, config)) => {
                tracing::info!(trigger = trigger.as_str(), generation, took_ms, changes = ?changes, "Reloaded the pipeline file.");
                on_success(&config);
                (changes, None)
            }
            Err(error) => {
                tracing::error!(trigger = trigger.as_str(), %error, "Reload refused; the running pipelines are unchanged.");
                (Vec::new(), Some(error))
            }
        };
        let outcome = Arc::new(ReloadOutcome {
            generation,
            trigger: trigger.as_str(),
            at: crate::time::now_rfc3339(),
            took_ms,
            ok,
            changes,
            error,
        });
        reloads.record(outcome.clone());
        request.answer(outcome);
    }
}

/// Validates `file` (compiling every plugin), checks that it only changes
/// what can change live, and applies it.
async fn reload(
    live: &Mutex<Live>,
    file: &Path,
    host: &PluginHost,
) -> Result<(Vec<String>, Config), String> {
    let config = tokio::task::block_in_place(|| config::validate(file, host)).map_err(|d| {
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        lines.join("\n")
    })?;
    let mut live = live.lock().await;
    if let Some(running) = live.config() {
        fixed_parts(running, &config, live.embedded().is_some())?;
    }
    let changes = live
        .apply(config.clone(), host)
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok((changes, config))
}

/// What a reload cannot change: the listeners (their sockets are bound),
/// the admin API's address, and whether the embedded broker runs.
fn fixed_parts(running: &Config, next: &Config, embedded: bool) -> Result<(), String> {
    let restart = "restart sluice to change it";
    for listener in &next.listeners {
        match running.listener(&listener.name) {
            None => return Err(format!("listener `{}` is new: {restart}", listener.name)),
            Some(old) if old != listener => {
                return Err(format!("listener `{}` changed: {restart}", listener.name));
            }
            Some(_) => {}
        }
    }
    if let Some(gone) = running
        .listeners
        .iter()
        .find(|l| next.listener(&l.name).is_none())
    {
        return Err(format!("listener `{}` was removed: {restart}", gone.name));
    }
    let address = |c: &Config| c.admin.as_ref().map(|a| a.address);
    if address(running) != address(next) {
        return Err(format!("the [admin] address changed: {restart}"));
    }
    if wants_embedded(next) && !embedded {
        return Err(format!(
            "the file now uses the embedded broker, which is not running: {restart}"
        ));
    }
    Ok(())
}
