//! wss:// listeners: rustls (ring provider) from PEM files, reloaded when
//! the files change. A replacement that does not load (half-written, a key
//! that does not fit) is refused and the served certificate stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::Watcher as _;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Why a listener's TLS files are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("certificate {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("private key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("{0}")]
    Config(String),
    /// The files cannot be watched for changes.
    #[error("cannot watch the certificate files: {0}")]
    Watch(String),
}

/// Waits this long after a change before reloading, so a certificate and
/// key written one after the other are read together.
const SETTLE: Duration = Duration::from_millis(200);

/// A listener's TLS: the acceptor, and the watcher that keeps its
/// certificate current (dropping this stops the reloads).
pub struct Tls {
    /// Accepts TLS connections with the current certificate.
    pub acceptor: TlsAcceptor,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// The current certificate, swapped on reload; new handshakes use it,
/// established connections keep theirs.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// An acceptor for the certificate chain and key in these PEM files, fixed.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let current = Arc::new(Current(RwLock::new(Arc::new(load(cert, key)?))));
    config(current)
}

/// [`acceptor`] that reloads the files whenever they change (from a
/// tokio runtime: the reload runs on it).
pub fn reloading(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
    let current = Arc::new(Current(RwLock::new(Arc::new(load(cert, key)?))));
    let acceptor = config(current.clone())?;
    let watcher = watch(cert.to_owned(), key.to_owned(), current)?;
    Ok(Tls {
        acceptor,
        _watcher: Some(watcher),
    })
}

fn config(current: Arc<Current>) -> Result<TlsAcceptor, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(current);
    // WebSocket upgrades are HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reads and checks a certificate chain and its key.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.display().to_string(),
            reason: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let signing = ring::sign::any_supported_type(&key).map_err(|e| TlsError::Key {
        path: String::from("(key)"),
        reason: e.to_string(),
    })?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| TlsError::Config(format!("the key does not fit the certificate: {e}")))?;
    Ok(certified)
}

/// Watches the files' directories (editors and cert tools replace files by
/// renaming, which a watch on the file itself would miss).
fn watch(
    cert: PathBuf,
    key: PathBuf,
    current: Arc<Current>,
) -> Result<notify::RecommendedWatcher, TlsError> {
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let names: Vec<PathBuf> = vec![cert.clone(), key.clone()];
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event
                .paths
                .iter()
                .any(|p| names.iter().any(|n| p.file_name() == n.file_name()))
        {
            let _ = changed.send(());
        }
    })
    .map_err(|e| TlsError::Watch(e.to_string()))?;
    let mut dirs: Vec<&Path> = [&cert, &key]
        .iter()
        .map(|p| p.parent().unwrap_or(Path::new(".")))
        .collect();
    dirs.dedup();
    for dir in dirs {
        watcher
            .watch(dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| TlsError::Watch(format!("{}: {e}", dir.display())))?;
    }
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while changes.try_recv().is_ok() {}
            match load(&cert, &key) {
                Ok(certified) => {
                    *current.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
                    tracing::info!(cert = %cert.display(), "TLS certificate reloaded.");
                }
                Err(error) => {
                    tracing::warn!(cert = %cert.display(), %error, "TLS files changed but do not load; still serving the previous certificate.");
                }
            }
        }
    });
    Ok(watcher)
}
