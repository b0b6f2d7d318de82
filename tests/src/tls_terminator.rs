//! A TLS terminator in front of a plaintext broker, for the secured-Kafka
//! tests (tansu 0.6 serves TLS but cannot ask for client certificates).
//!
//! It accepts TLS on a loopback port with one of the certificates in
//! `tests/fixtures/kafka-tls` (the CA-signed `broker.pem`, or the
//! self-signed `rogue.pem` nobody trusts), optionally requires a client
//! certificate signed by the test CA (mutual TLS), and forwards the
//! plaintext bytes to the broker. It runs on its own thread with its own
//! tokio runtime and stops when dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto::ring};

use crate::repo_root;

/// Which certificate the terminator presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCert {
    /// `broker.pem`, signed by the test CA, for localhost and 127.0.0.1.
    Trusted,
    /// `rogue.pem`: self-signed, the same names, vouched for by nobody.
    Rogue,
}

/// A file of the test TLS material.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/kafka-tls").join(name)
}

/// A running terminator; stops when dropped.
pub struct TlsTerminator {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsTerminator {
    /// Binds a free loopback port (before the broker starts, so the broker
    /// can advertise it), then forwards to `upstream` once [`Self::run`]s.
    pub fn bind() -> Result<StdListener> {
        let listener =
            StdListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the terminator")?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// Serves TLS on `listener` with `cert`, forwarding to `upstream`;
    /// with `require_client_cert`, only clients with a certificate from
    /// the test CA get through.
    pub fn run(
        listener: StdListener,
        upstream: SocketAddr,
        cert: ServerCert,
        require_client_cert: bool,
    ) -> Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(server_config(cert, require_client_cert)?));
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the terminator's runtime")?;
        let thread = std::thread::Builder::new()
            .name("tls-terminator".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = stopped => {}
                        () = serve(listener, acceptor, upstream) => {}
                    }
                });
            })?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl std::fmt::Debug for TlsTerminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTerminator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, upstream: SocketAddr) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // A refused handshake (no or an untrusted client certificate)
            // just drops the connection, as a broker would.
            let Ok(mut tls) = acceptor.accept(client).await else {
                return;
            };
            let Ok(mut broker) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
        });
    }
}

fn server_config(cert: ServerCert, require_client_cert: bool) -> Result<ServerConfig> {
    let (cert_file, key_file) = match cert {
        ServerCert::Trusted => ("broker.pem", "broker-key.pem"),
        ServerCert::Rogue => ("rogue.pem", "rogue-key.pem"),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture(cert_file))?
        .collect::<Result<_, _>>()
        .context("reading the terminator's certificate")?;
    let key = PrivateKeyDer::from_pem_file(fixture(key_file)).context("reading its key")?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(fixture("ca.pem"))? {
            roots.add(ca?)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(builder.with_single_cert(chain, key)?)
}
