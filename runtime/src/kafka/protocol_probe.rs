//! Whether a broker speaks TLS, asked directly when librdkafka only says
//! "all brokers are down": a TLS client of a plaintext listener gets no
//! answer at all (the broker reads the TLS hello as the length of a huge
//! request and waits), and a plaintext client of a TLS listener is hung up
//! on, and librdkafka names neither.
//!
//! The probe opens one TCP connection to the first bootstrap server and
//! starts a TLS handshake that trusts any certificate (it authenticates
//! nothing and sends nothing after the handshake): any TLS answer, even an
//! alert, means the listener speaks TLS.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, DigitallySignedStruct};

/// How long the probe waits to connect and for each answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the listener at an address speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// It answered the TLS hello.
    Tls,
    /// It did not (no answer in time, a hang-up, or bytes that are not TLS).
    NotTls,
    /// The address could not be reached at all.
    Unreachable,
}

/// Asks the listener at `address` (`host:port`) whether it speaks TLS.
/// Blocks for up to a few seconds.
pub fn probe(address: &str) -> Listener {
    let Some(addr) = address.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return Listener::Unreachable;
    };
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) else {
        return Listener::Unreachable;
    };
    let _ = tcp.set_read_timeout(Some(PROBE_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(PROBE_TIMEOUT));
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid name"));
    let Ok(mut tls) = ClientConnection::new(Arc::new(any_certificate()), name) else {
        return Listener::NotTls;
    };
    while tls.is_handshaking() {
        match tls.complete_io(&mut tcp) {
            Ok((0, 0)) => return Listener::NotTls,
            Ok(_) => {}
            Err(error) => {
                let answered_in_tls = error
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|e| matches!(e, rustls::Error::AlertReceived(_)));
                // No answer in time, a hang-up or bytes that are not TLS.
                return if answered_in_tls {
                    Listener::Tls
                } else {
                    Listener::NotTls
                };
            }
        }
    }
    Listener::Tls
}

/// What to tell the operator when `expects_tls` does not match what the
/// listener at `address` speaks; `None` when it matches or the probe
/// cannot tell.
pub fn mismatch(address: &str, expects_tls: bool) -> Option<String> {
    match (probe(address), expects_tls) {
        (Listener::NotTls, true) => Some(format!(
            "the brokers speak another protocol: {address} does not answer a TLS handshake (a plaintext listener?); check `security.protocol`"
        )),
        (Listener::Tls, false) => Some(format!(
            "the brokers speak another protocol: {address} answers in TLS; set `security.protocol` to `ssl` or `sasl_ssl`"
        )),
        _ => None,
    }
}

/// A client configuration that accepts any certificate: the probe only
/// asks whether TLS is spoken.
fn any_certificate() -> ClientConfig {
    let provider = Arc::new(ring::default_provider());
    ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_listener_that_never_answers_is_not_tls_and_a_closed_port_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // Reads the hello and waits, as a plaintext Kafka broker does.
        let holder = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut buffer = [0u8; 512];
            let _ = socket.read(&mut buffer);
            std::thread::sleep(PROBE_TIMEOUT + Duration::from_millis(500));
        });
        assert_eq!(probe(&address), Listener::NotTls);
        assert!(mismatch(&address, false).is_none(), "plaintext as expected");
        holder.join().unwrap();

        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert_eq!(probe(&closed.to_string()), Listener::Unreachable);
    }
}
