//! Builds a running process from a checked config: the embedded broker if
//! asked for, every pipeline (see [`super::live`]), the listeners and the
//! admin API. Everything is built before anything serves, so a bad plugin
//! or an unreachable port fails the start, not the first client.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinSet;

use super::live::{Live, wants_embedded};
use super::reload;
use crate::admin::{ReloadRequest, Reloads};
use crate::config::Config;
use crate::kafka::EmbeddedBroker;
use crate::plugin::PluginHost;
use crate::ws::{self, Gate, PerIpLimit};

/// A started process.
pub struct Running {
    /// Where each listener is bound, by name (port 0 resolved); the admin
    /// API last, as `admin`.
    pub bound: Vec<(String, std::net::SocketAddr)>,
    live: Mutex<Live>,
    reloads: Reloads,
    queue: std::sync::Mutex<Option<mpsc::Receiver<ReloadRequest>>>,
    servers: JoinSet<()>,
    shutdown: watch::Sender<bool>,
}

impl Running {
    /// The embedded broker's bootstrap address, when the config asked for one.
    pub async fn embedded_broker(&self) -> Option<String> {
        let live = self.live.lock().await;
        live.embedded().map(|b| b.bootstrap_servers().to_owned())
    }

    /// The way to ask for a live reload.
    pub fn reloads(&self) -> Reloads {
        self.reloads.clone()
    }

    /// Carries out the reloads asked for through [`Running::reloads`],
    /// reading `file` each time; `on_success` sees each config that was
    /// applied. Runs until the process stops (call it once).
    pub async fn serve_reloads(
        &self,
        file: &Path,
        host: &PluginHost,
        on_success: impl Fn(&Config),
    ) {
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        match queue {
            Some(queue) => {
                reload::serve(&self.live, file, host, &self.reloads, queue, on_success).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Closes every connection with 1001, stops the consumers (committing
    /// what was handled) and waits for all of it.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.servers.join_next().await.is_some() {}
        self.live.lock().await.shutdown().await;
    }

    /// Pipelines whose consumer has ended, with the reason.
    pub async fn failed_consumers(&self) -> Vec<(String, String)> {
        self.live.lock().await.failed_consumers()
    }
}

/// Starts everything `config` describes. Call from inside a tokio runtime.
pub async fn start(config: &Config, host: &PluginHost) -> anyhow::Result<Running> {
    let embedded = if wants_embedded(config) {
        Some(EmbeddedBroker::start(3).context("cannot start the embedded Kafka broker")?)
    } else {
        None
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let cluster = crate::cluster::Cluster::new(config.cluster.as_ref());
    let registry = cluster.registry().clone();
    let mut live = Live::new(embedded, cluster.clone(), shutdown_rx.clone());
    live.apply(config.clone(), host).await?;

    let mut servers = JoinSet::new();
    let mut bound = Vec::new();
    let mut gates = Vec::new();
    // Every listener is bound, even one without pipelines yet: a reload
    // may give it some, but cannot bind sockets.
    for listener in &config.listeners {
        let tls = match &listener.tls {
            Some(files) => Some(
                ws::tls_reloading(&files.cert, &files.key)
                    .with_context(|| format!("listener `{}`: TLS", listener.name))?,
            ),
            None => None,
        };
        let socket = TcpListener::bind(listener.address).await.with_context(|| {
            format!(
                "listener `{}`: cannot bind {}",
                listener.name, listener.address
            )
        })?;
        let address = socket.local_addr()?;
        bound.push((listener.name.clone(), address));
        let gate = Arc::new(Gate {
            allowed_origins: listener.allowed_origins.clone(),
            per_ip: PerIpLimit::new(listener.connections_per_ip),
            routes: arc_swap::ArcSwap::from_pointee(live.routes(&listener.name)),
            limits: listener.limits,
            slots: crate::connections::Slots::new(Some(listener.limits.max_connections)),
            health: live.health(),
            registry: registry.clone(),
        });
        gates.push((listener.name.clone(), gate.clone()));
        let shutdown = shutdown_rx.clone();
        servers.spawn(async move {
            // The watcher reloads the certificate while the listener serves.
            let acceptor = tls.as_ref().map(|tls| tls.acceptor.clone());
            ws::serve(socket, acceptor, gate, shutdown).await;
            drop(tls);
        });
    }
    let (reloads, queue) = Reloads::channel();
    let mut admin_state = None;
    if let Some(admin) = &config.admin {
        let socket = TcpListener::bind(admin.address)
            .await
            .with_context(|| format!("admin API: cannot bind {}", admin.address))?;
        bound.push(("admin".to_owned(), socket.local_addr()?));
        let state = Arc::new(crate::admin::State::new(
            config,
            cluster.clone(),
            &live.served(),
            (Some(reloads.clone()), Some(live.health())),
        ));
        admin_state = Some(state.clone());
        servers.spawn(crate::admin::serve(socket, state, shutdown_rx.clone()));
    }
    live.attach(gates, admin_state);
    Ok(Running {
        bound,
        live: Mutex::new(live),
        reloads,
        queue: std::sync::Mutex::new(Some(queue)),
        servers,
        shutdown,
    })
}
