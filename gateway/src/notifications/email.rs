//! E-mail over SMTP with lettre: STARTTLS or implicit TLS (1.3 only), text and HTML bodies with
//! the QR code inline, and a Message-ID derived from the message's idempotency key, so a message
//! sent again after a crash is recognisably the same one.

use super::message::Message;
use super::{SendError, Sent};
use crate::config::{EmailConfig, EmailTls};
use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters, TlsVersion};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// SMTP connections kept open to the relay. Each message holds one for its whole exchange (about
/// 60 ms to a local relay, docs/benchmarks.md), so lettre's default of 10 capped delivery near
/// 170 e-mails/s; the sender attempts up to 64 messages at once.
const CONNECTIONS: u32 = 32;

/// The configured mail relay.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The domain of Message-IDs: the sender's.
    domain: String,
}

impl Email {
    /// A client for the relay `config` names; reads the CA and password files now.
    pub fn new(config: &EmailConfig, timeout: Duration) -> anyhow::Result<Email> {
        let from: Mailbox = config
            .from
            .parse()
            .with_context(|| format!("notifications.email.from {:?}", config.from))?;
        let domain = from.email.domain().to_owned();
        let tls = match config.tls {
            EmailTls::None => Tls::None,
            EmailTls::Starttls => Tls::Required(tls_parameters(config)?),
            EmailTls::Implicit => Tls::Wrapper(tls_parameters(config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(CONNECTIONS));
        if let Some((user, file)) = &config.credentials {
            let password = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the SMTP password file {file:?}"))?;
            builder = builder.credentials(Credentials::new(user.clone(), password.trim().into()));
        }
        Ok(Email {
            transport: builder.build(),
            from,
            domain,
        })
    }

    /// Sends `message` to `to` under the idempotency key `key`.
    pub async fn send(&self, message: &Message, key: &str, to: &str) -> Result<Sent, SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| SendError::Permanent("the address is not a mailbox".into()))?;
        let qr = message.qr_png();
        let html = message.html(qr.as_ref().map(|_| "code-qr"));
        let alternative = MultiPart::alternative_plain_html(message.text(), html);
        let body = match qr {
            Some(png) => MultiPart::related().multipart(alternative).singlepart(
                Attachment::new_inline("code-qr".into())
                    .body(png, ContentType::parse("image/png").expect("a valid type")),
            ),
            None => alternative,
        };
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject())
            .message_id(Some(format!("<{key}@{}>", self.domain)))
            .multipart(body)
            .map_err(|e| SendError::Permanent(format!("cannot build the e-mail: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(Sent::Delivered),
            Err(e) => Err(classify(&e)),
        }
    }
}

fn tls_parameters(config: &EmailConfig) -> anyhow::Result<TlsParameters> {
    let mut builder =
        TlsParameters::builder(config.host.clone()).set_min_tls_version(TlsVersion::Tlsv13);
    if let Some(file) = &config.ca_file {
        let pem =
            std::fs::read(file).with_context(|| format!("cannot read the relay's CA {file:?}"))?;
        builder = builder.add_root_certificate(
            Certificate::from_pem(&pem).with_context(|| format!("{file:?} is not a PEM CA"))?,
        );
    }
    builder
        .build_rustls()
        .context("cannot set up TLS for the mail relay")
}

/// SMTP's own classes: 5xx replies are permanent, 4xx replies and everything that kept the
/// conversation from finishing (connection, TLS, timeout) are worth another try.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let reason = match e.status() {
        Some(code) => format!("smtp {code}"),
        None if e.is_timeout() => "smtp timeout".into(),
        None if e.is_tls() => "smtp tls failure".into(),
        None => "smtp connection failed".into(),
    };
    if e.is_permanent() {
        SendError::Permanent(reason)
    } else {
        SendError::Transient {
            error: reason,
            after: None,
        }
    }
}
