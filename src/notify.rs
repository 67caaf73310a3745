//! systemd readiness (`Type=notify`): `READY=1` once the store is open and the socket
//! bound, `STOPPING=1` on shutdown. A datagram to `$NOTIFY_SOCKET`, as sd_notify(3) does;
//! nothing happens when the variable is unset (not run by systemd).

use std::os::unix::net::UnixDatagram;

/// Sends `state` to systemd if it asked for notifications; errors are only logged.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        if let Some(abstract_name) = bytes.strip_prefix(b"@") {
            // An abstract socket (Linux): the name after '@'.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        } else {
            socket.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
