//! The accept loop every listener shares (the WebSocket listeners and the
//! admin API): accepts TCP connections until shutdown, runs a task per
//! connection, and backs off exponentially while accepting fails (out of
//! file descriptors, say), so a starved process neither spins on the error
//! nor stops serving once it clears. With `permits`, a permit is taken
//! *before* each accept and handed to the connection: once they are all
//! out the loop stops accepting, and new connections wait in the kernel's
//! backlog instead of taking file descriptors.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// The first pause after a failed accept.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause: a listener comes back within a second of the cause
/// clearing.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Accepts on `listener` until `shutdown` turns true, spawning `serve` for
/// each connection (with `TCP_NODELAY`: frames are written whole) and the
/// permit taken for it, if `permits` are counted. Returns the connections
/// still running, for the caller to drain or drop. `what` names the
/// listener in logs.
pub async fn accept_until<F, Fut>(
    listener: TcpListener,
    (what, permits): (&str, Option<Arc<Semaphore>>),
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) -> JoinSet<()>
where
    F: FnMut(TcpStream, SocketAddr, Option<OwnedSemaphorePermit>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let mut backoff = Backoff::default();
    loop {
        let permit = match &permits {
            None => None,
            Some(permits) => tokio::select! {
                permit = permits.clone().acquire_owned() => permit.ok(),
                _ = shutdown.changed() => break,
            },
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff.reset();
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve(stream, peer, permit));
                }
                Err(error) => {
                    let pause = backoff.next_pause();
                    tracing::warn!(listener = what, %error, pause_ms = pause.as_millis() as u64, "Accepting a connection failed; pausing.");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections
}

/// Pauses that double after each failure in a row, up to [`MAX_PAUSE`].
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next_pause(&mut self) -> Duration {
        let pause = FIRST_PAUSE
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_PAUSE);
        self.failures = self.failures.saturating_add(1);
        pause
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_second_and_start_over_after_a_success() {
        let mut backoff = Backoff::default();
        let pauses: Vec<u64> = (0..10)
            .map(|_| backoff.next_pause().as_millis() as u64)
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        for _ in 0..100 {
            backoff.next_pause();
        }
        assert_eq!(backoff.next_pause(), MAX_PAUSE);
        backoff.reset();
        assert_eq!(backoff.next_pause(), FIRST_PAUSE);
    }
}
