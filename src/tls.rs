//! HTTPS from the binary (`[server.tls]`): rustls with the `ring` provider, and a
//! certificate that can be replaced while the daemon runs. certbot renews a certificate by
//! writing new files; SIGHUP makes the daemon read them again, so a renewal needs no
//! restart. A new pair that does not load (unreadable, not PEM, key and certificate not a
//! pair) is logged and the certificate in use stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::Tls;

/// A TLS client must finish its handshake within this, in milliseconds (slow-client guard,
/// like the request-head timeout).
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 3_000;

/// The certificate chain and key every handshake presents, replaced by [`Certificates::reload`].
#[derive(Debug)]
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Loads the pair named by `[server.tls]`; an error names the key and the file.
    pub fn load(tls: &Tls) -> Result<Arc<Certificates>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read_pair(&tls.cert_file, &tls.key_file, &provider)?;
        Ok(Arc::new(Certificates {
            cert_file: tls.cert_file.clone(),
            key_file: tls.key_file.clone(),
            provider,
            current: RwLock::new(Arc::new(key)),
        }))
    }

    /// Reads the files again and, when they hold a valid pair, presents it from the next
    /// handshake on. On an error the pair in use stays and the error is returned.
    /// Blocking (file reads): call it off the async workers.
    pub fn reload(&self) -> Result<(), String> {
        let key = read_pair(&self.cert_file, &self.key_file, &self.provider)?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(key);
        Ok(())
    }

    /// The rustls server configuration that presents the current pair.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, String> {
        let config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(current.clone())
    }
}

/// The certificate chain (leaf first) and the private key, checked to be a pair.
fn read_pair(cert_file: &Path, key_file: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = read_chain(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        format!(
            "`server.tls.key_file`: {}: {}",
            key_file.display(),
            pem_error(e, "a PEM private key")
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "`server.tls.key_file`: {} does not go with {}: {e}",
            key_file.display(),
            cert_file.display()
        )
    })
}

fn read_chain(cert_file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |why: String| format!("`server.tls.cert_file`: {}: {why}", cert_file.display());
    let chain = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad(pem_error(e, "PEM certificates")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(pem_error(e, "PEM certificates")))?;
    if chain.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(chain)
}

/// An I/O error as the OS says it; anything else as what was expected.
fn pem_error(e: rustls::pki_types::pem::Error, expected: &str) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => format!("expected {expected}, found none"),
        other => format!("expected {expected}: {other:?}"),
    }
}

/// Reloads `certificates` on every SIGHUP (`systemctl reload stockd`, certbot's deploy
/// hook), for the life of the runtime it is spawned on. Without TLS a SIGHUP only logs a
/// warning: it must not end the daemon (the default action of SIGHUP).
pub fn reload_on_sighup(certificates: Option<Arc<Certificates>>) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(certificates) = certificates.clone() else {
                // A warning: whoever sent it may expect the config to be re-read.
                tracing::warn!("SIGHUP ignored: no [server.tls] to reload; the rest of the configuration is read only at start (restart to apply it)");
                continue;
            };
            let reloaded = actix_web::rt::task::spawn_blocking(move || certificates.reload()).await;
            match reloaded {
                Ok(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the previous one stays")
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate reload failed; the previous one stays"),
            }
        }
    });
    Ok(())
}
