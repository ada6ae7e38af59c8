//! A small SMTP receiver for tests: the app's mailer talks real SMTP to it (lettre, plain
//! TCP on loopback), and tests read the messages it accepted.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::eventually;

/// One accepted message: its envelope recipients and its text (headers and body).
#[derive(Debug, Clone)]
pub struct Received {
    pub recipients: Vec<String>,
    pub text: String,
}

impl Received {
    /// The body as a mail client shows it: quoted-printable decoded.
    pub fn body(&self) -> String {
        let (headers, body) = self.text.split_once("\n\n").unwrap_or(("", &self.text));
        if !headers.contains("Content-Transfer-Encoding: quoted-printable") {
            return body.to_owned();
        }
        let joined = body.replace("=\n", "");
        let mut bytes = Vec::new();
        let mut rest = joined.as_bytes();
        while let Some((&byte, tail)) = rest.split_first() {
            let escaped = (byte == b'=')
                .then(|| std::str::from_utf8(tail.get(..2)?).ok())
                .flatten()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(decoded) => {
                    bytes.push(decoded);
                    rest = &tail[2..];
                }
                None => {
                    bytes.push(byte);
                    rest = tail;
                }
            }
        }
        String::from_utf8(bytes).expect("UTF-8 text")
    }

    /// The value of `name=` in the first link of the message.
    pub fn link_parameter(&self, name: &str) -> Option<String> {
        let body = self.body();
        let start = body.find(&format!("?{name}="))? + name.len() + 2;
        let rest = &body[start..];
        let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

#[derive(Clone)]
pub struct SmtpReceiver {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

impl SmtpReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let kept = inbox.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, kept.clone()));
            }
        });
        Self { port, inbox }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far for `address`.
    pub fn messages_to(&self, address: &str) -> Vec<Received> {
        let inbox = self.inbox.lock().unwrap();
        inbox
            .iter()
            .filter(|m| m.recipients.iter().any(|r| r.contains(address)))
            .cloned()
            .collect()
    }

    /// Waits for the `count`th message to `address` and answers it.
    pub async fn wait_for(&self, address: &str, count: usize) -> Received {
        eventually(Duration::from_secs(10), "a mail to arrive", || async {
            self.messages_to(address).get(count - 1).cloned()
        })
        .await
    }
}

/// Speaks just enough SMTP for a client that sends plain messages: no TLS, no auth.
async fn session(stream: TcpStream, inbox: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 test-receiver ESMTP\r\n").await;
    let mut recipients = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-test-receiver\r\n250 8BITMIME\r\n",
            "RCPT" => {
                recipients.push(line[8..].to_owned());
                b"250 OK\r\n"
            }
            "DATA" => {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut text = String::new();
                while let Ok(Some(data)) = lines.next_line().await {
                    if data == "." {
                        break;
                    }
                    text.push_str(&data);
                    text.push('\n');
                }
                let recipients = std::mem::take(&mut recipients);
                inbox.lock().unwrap().push(Received { recipients, text });
                b"250 accepted\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 OK\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
