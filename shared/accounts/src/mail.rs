//! Outgoing mail: SMTP through lettre when a relay is configured (production must use one,
//! over TLS); otherwise each message is written to a file in `MAIL_DIR` and its path
//! logged, so development needs no mail server.

use std::path::PathBuf;
use std::time::Duration;

use domain::error::{ServiceError, ServiceResult};
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use settings::MailConfig;

/// A relay that does not answer within this long fails the send.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One plain-text message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn new(config: &MailConfig) -> ServiceResult<Self> {
        let from = config
            .from
            .parse()
            .map_err(|e| ServiceError::internal(format!("MAIL_FROM is not a mailbox: {e}")))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| ServiceError::internal(format!("SMTP_URL: {e}")))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(&config.dir).map_err(ServiceError::internal)?;
                Transport::Folder(AsyncFileTransport::new(&config.dir), config.dir.clone())
            }
        };
        Ok(Self { transport, from })
    }

    pub async fn send(&self, mail: Mail) -> ServiceResult<()> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| ServiceError::internal(format!("not a mailbox: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(ServiceError::internal)?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message)
                    .await
                    .map_err(|e| ServiceError::unavailable("mail relay", e))?;
            }
            Transport::Folder(folder, dir) => {
                let id = folder.send(message).await.map_err(ServiceError::internal)?;
                let path = dir.join(format!("{id}.eml"));
                tracing::info!(path = %path.display(), "mail written (no SMTP_URL set)");
            }
        }
        Ok(())
    }
}
