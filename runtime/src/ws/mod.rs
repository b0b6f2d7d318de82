//! The WebSocket server: hyper accepts HTTP/1.1, the handshake [`Gate`]
//! checks each upgrade request, fastwebsockets speaks the protocol, and each
//! connection drains its own outbox (see [`crate::hub`]).

mod activity;
mod chaos;
mod connection;
#[cfg(test)]
mod deflate_tests;
mod endpoint;
mod handshake;
mod health;
mod inbound_task;
mod limit;
mod pending;
mod reader;
mod shared_frame;
mod tls;
mod traffic;
mod writer;

// The wire rules the server keeps itself, in their own crate so they can
// be fuzzed alone.
use sluice_protocol::{deflate, frame_shim, request_form, wire};

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::listen::accept_until;

pub use endpoint::{Endpoint, Routes, channel_of};
pub use handshake::{Admitted, Gate, denied, handshake_of, refuse};
pub use health::{BrokerProbe, Health, PipelineHealth};
pub use limit::PerIpLimit;
pub use tls::{Tls, TlsError, acceptor as tls_acceptor, reloading as tls_reloading};

/// How long a shutdown waits for connections to finish their close handshake.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections on `listener` (wss:// when `tls` is set) until
/// `shutdown` turns true, then closes every connection with 1001 and waits
/// (bounded) for them.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    gate: Arc<Gate>,
    shutdown: watch::Receiver<bool>,
) {
    let accepting = shutdown.clone();
    let slots = gate.slots.clone();
    // Connections not upgraded yet: at most `max_connections` of them on
    // the listener (the permit is taken before accepting), and
    // `pending_per_ip` per client IP. Upgraded ones hold a slot instead.
    let permits = Arc::new(tokio::sync::Semaphore::new(gate.limits.max_connections));
    let pending = pending::Pending::new(gate.limits.pending_per_ip);
    let listening = ("websocket", Some(permits));
    let mut connections = accept_until(listener, listening, accepting, move |stream, peer, permit| {
        let (gate, shutdown, tls) = (gate.clone(), shutdown.clone(), tls.clone());
        let place = pending.enter(peer.ip());
        async move {
            let (Some(_place), _permit) = (place, permit) else {
                crate::metrics::global().rejected(None, "pending_per_ip");
                tracing::debug!(%peer, "Too many unfinished connections from this IP; closing.");
                return;
            };
            let Some(tls) = tls else {
                return http_connection(stream, peer, gate, shutdown).await;
            };
            // A client that has not finished its TLS handshake by then is dropped.
            let timeout = gate.limits.handshake_timeout;
            match tokio::time::timeout(timeout, tls.accept(stream)).await {
                Ok(Ok(stream)) => http_connection(stream, peer, gate, shutdown).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed."),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
            }
        }
    })
    .await;
    // Upgraded connections run in tasks of their own (hyper hands them
    // over), each holding one of the listener's slots until its close
    // handshake is done: wait for those too, or the process could exit
    // before they sent their close frame.
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
        while slots.open() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = slots.open(),
            "Connections still open after the drain timeout; dropping them."
        );
    }
}

async fn http_connection<S>(
    stream: S,
    peer: SocketAddr,
    gate: Arc<Gate>,
    shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // A client that has not sent its whole request head by then (slowloris)
    // is dropped.
    let timeout = gate.limits.handshake_timeout;
    let service = service_fn(move |request| handle(request, peer, gate.clone(), shutdown.clone()));
    let connection = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%peer, %error, "HTTP connection ended with an error.");
    }
}

async fn handle(
    mut request: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    gate: Arc<Gate>,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !fastwebsockets::upgrade::is_upgrade_request(&request) {
        // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a 400.
        if request.version() == hyper::Version::HTTP_11
            && request
                .headers()
                .get_all(hyper::header::HOST)
                .iter()
                .count()
                != 1
        {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                "an HTTP/1.1 request needs exactly one Host header",
                &[],
            ));
        }
        return Ok(match request.uri().path() {
            "/healthz" => refuse(StatusCode::OK, "ok", &[]),
            "/readyz" => {
                let (status, body) = gate.health.load_full().readyz().await;
                text(status, body, "text/plain; charset=utf-8")
            }
            "/health" => {
                let (status, body) = gate.health.load_full().status().await;
                text(status, body, "application/json")
            }
            _ => refuse(
                StatusCode::UPGRADE_REQUIRED,
                "this endpoint speaks WebSocket",
                &[("upgrade", "websocket")],
            ),
        });
    }
    let mut admitted = match gate.admit(&request, peer).await {
        Ok(admitted) => admitted,
        Err(response) => {
            tracing::debug!(%peer, status = %response.status(), path = request.uri().path(), "Handshake refused.");
            return Ok(response);
        }
    };
    let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut request) {
        Ok(parts) => parts,
        Err(error) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                &format!("bad WebSocket handshake: {error}"),
                &[],
            ));
        }
    };
    let id = gate.registry.next_id();
    let outbox = connection::subscribe(&mut admitted, id);
    let mut response = response;
    if let Some(protocol) = &admitted.subprotocol
        && let Ok(value) = hyper::header::HeaderValue::from_str(protocol)
    {
        response
            .headers_mut()
            .insert(hyper::header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    let policy = deflate::Policy {
        enabled: admitted.endpoint.policy.compression,
        ..deflate::Policy::default()
    };
    let compression = match deflate::negotiate(request.headers(), &policy) {
        Some((extension, session)) => {
            if let Ok(value) = hyper::header::HeaderValue::from_str(&extension) {
                response
                    .headers_mut()
                    .insert(hyper::header::SEC_WEBSOCKET_EXTENSIONS, value);
            }
            session
        }
        None => deflate::Session::off(),
    };
    tokio::spawn(async move {
        match upgrade.await {
            Ok(ws) => connection::serve(ws, (admitted, compression), outbox, &gate, shutdown).await,
            Err(error) => {
                admitted.endpoint.hub.unsubscribe(&admitted.channel, id);
                tracing::debug!(conn = id, %error, "Upgrade failed.");
            }
        }
    });
    Ok(response.map(|_| Full::default()))
}

/// A plain response with a body and a content type.
fn text(status: u16, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
