//! Publishing to NATS JetStream: the stream is created when missing (subjects
//! `<prefix>.>`), each event goes to `<prefix>.<warehouse>.<type>` with `Nats-Msg-Id` = its
//! webhook-id, so JetStream's duplicate window drops a resend after a crash, and only the
//! publish ack counts as delivered.

use std::time::Duration;

use async_nats::jetstream;

use super::event::Event;
use super::Failure;
use crate::config::NatsConfig;

/// Connecting, and waiting for a publish ack, give up after this, in milliseconds.
pub const NATS_TIMEOUT_MS: u64 = 10_000;
/// Longest stream name or subject prefix accepted, in bytes.
const NAME_BYTES_MAX: usize = 128;

/// Why a `[nats]` section cannot be used: the field and the reason.
pub fn config_refusal(n: &NatsConfig) -> Option<(&'static str, String)> {
    let scheme_ok = ["nats://", "tls://"].iter().any(|s| n.url.starts_with(s));
    if !scheme_ok || n.url.len() > super::webhook::URL_BYTES_MAX {
        return Some(("url", "expected a URL like nats://127.0.0.1:4222 (or tls://…)".into()));
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= NAME_BYTES_MAX
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !name_ok(&n.stream) {
        return Some(("stream", "letters, digits, `_` and `-` only".into()));
    }
    let prefix_ok = n.subject_prefix.len() <= NAME_BYTES_MAX && n.subject_prefix.split('.').all(name_ok);
    if !prefix_ok {
        return Some((
            "subject_prefix",
            "dot-separated tokens of letters, digits, `_` and `-`".into(),
        ));
    }
    None
}

/// A warehouse id as one subject token: characters NATS gives a meaning (`.`, `*`, `>`,
/// spaces) and anything else outside `[A-Za-z0-9_-]` become `_` (the body has the id).
pub fn subject_token(id: &str) -> String {
    let token: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        "_".into()
    } else {
        token
    }
}

/// The JetStream publisher of one `[nats]` sink: connects on first use, creates the stream
/// when missing, and starts over after a failure.
pub struct Nats {
    config: NatsConfig,
    connection: Option<jetstream::Context>,
    stream_ready: bool,
}

impl Nats {
    pub fn new(config: NatsConfig) -> Nats {
        Nats {
            config,
            connection: None,
            stream_ready: false,
        }
    }

    /// Where it publishes, for `/admin/sinks` (never credentials).
    pub fn target(config: &NatsConfig) -> String {
        let url = config.url.rsplit('@').next().unwrap_or_default();
        let host = url.split("://").nth(1).unwrap_or(url);
        format!("nats://{host} stream {}", config.stream)
    }

    async fn connect(&self) -> Result<jetstream::Context, Failure> {
        let timeout = Duration::from_millis(NATS_TIMEOUT_MS);
        let mut options = async_nats::ConnectOptions::new()
            .name("stockd")
            .connection_timeout(timeout)
            .request_timeout(Some(timeout));
        if let Some(path) = &self.config.credentials_file {
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| failure(format!("credentials file {}: {e}", path.display())))?;
        }
        let client = options
            .connect(self.config.url.as_str())
            .await
            .map_err(|e| failure(format!("connect: {e}")))?;
        let mut context = jetstream::new(client);
        context.set_timeout(timeout);
        Ok(context)
    }

    async fn ensure_stream(&self, js: &jetstream::Context) -> Result<(), Failure> {
        let config = jetstream::stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            ..Default::default()
        };
        js.get_or_create_stream(config)
            .await
            .map(|_| ())
            .map_err(|e| failure(format!("stream {}: {e}", self.config.stream)))
    }

    /// One attempt: `Ok` once JetStream acknowledged the message (a duplicate too).
    pub async fn deliver(&mut self, event: &Event) -> Result<(), Failure> {
        let js = match &self.connection {
            Some(js) => js.clone(),
            None => {
                let js = self.connect().await?;
                self.connection = Some(js.clone());
                js
            }
        };
        if !self.stream_ready {
            self.ensure_stream(&js).await?;
            self.stream_ready = true;
        }
        let subject = format!(
            "{}.{}.{}",
            self.config.subject_prefix,
            subject_token(&event.warehouse),
            event.ty.name()
        );
        let message = jetstream::message::PublishMessage::build()
            .payload(actix_web::web::Bytes::from(event.body.clone()))
            .message_id(&event.id);
        let acked = match js.send_publish(subject, message).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| failure(format!("publish ack: {e}"))),
            Err(e) => Err(failure(format!("publish: {e}"))),
        };
        if acked.is_err() {
            // The stream may be gone (deleted, or a server that lost its store): check it
            // again before the next attempt. The client reconnects by itself.
            self.stream_ready = false;
        }
        acked
    }
}

fn failure(error: String) -> Failure {
    Failure { status: None, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warehouse_ids_become_one_subject_token() {
        assert_eq!(subject_token("main"), "main");
        assert_eq!(subject_token("eu.west *>"), "eu_west___");
        assert_eq!(subject_token(""), "_");
    }
}
