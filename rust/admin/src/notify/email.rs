//! Email over SMTP (lettre on tokio, rustls with ring): one message per notification, to all of
//! its recipients, as flyteadmin's SMTP emailer sends it.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::template;
use super::{Failure, NotifyError, SmtpConfig, SmtpSecurity};

/// A configured SMTP server.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailSender {
    pub fn new(config: &SmtpConfig, timeout: Duration) -> Result<Self, NotifyError> {
        let bad = |reason: String| NotifyError::Config {
            what: "[notifications.smtp]".into(),
            reason,
        };
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| bad(format!("from {:?}: {e}", config.from)))?;
        let builder = match config.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| bad(e.to_string()))?,
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(|e| bad(e.to_string()))?
            }
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
        };
        let mut builder = builder.port(config.port()).timeout(Some(timeout));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err(bad("username and password go together".into())),
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends `message` to `recipients`. A recipient that is not an address, or an SMTP answer
    /// of the 5xx class, fails for good; anything else may be retried.
    pub async fn send(
        &self,
        recipients: &[String],
        message: &template::Message,
    ) -> Result<(), Failure> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for r in recipients {
            let to: Mailbox = r
                .parse()
                .map_err(|e| Failure::permanent(format!("recipient {r:?}: {e}")))?;
            builder = builder.to(to);
        }
        let email = builder
            .body(message.body.clone())
            .map_err(|e| Failure::permanent(format!("building the email: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::permanent(describe(&e))),
            Err(e) => Err(Failure::transient(describe(&e))),
        }
    }
}

/// An error with its causes (lettre's own message often says only "network error").
pub(super) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
