//! Following a job live: its events over the WebSocket (authenticated by a single-use
//! ticket, so no token goes into a URL), with a status read now and then in case an event
//! was missed or the connection dropped.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::api::{text, Api};
use crate::error::CliError;
use crate::report::Report;

/// With no event for this long, the job's status is read instead.
const QUIET: Duration = Duration::from_secs(5);

fn is_final(status: &str) -> bool {
    matches!(status, "SUCCESS" | "FAILED" | "CANCELLED")
}

/// Shows the job's stage and percent until it ends; its final view.
pub async fn until_done(api: &Api, report: &Report, job_id: &str) -> Result<Value, CliError> {
    let path = format!("/api/v2/jobs/{job_id}");
    let ticket = api.post("/api/v2/ws/ticket").await?;
    let address = format!(
        "{}/ws?ticket={}",
        api.server.replacen("http", "ws", 1),
        text(&ticket, "ticket")?
    );
    let mut events = tokio_tungstenite::connect_async(address.as_str())
        .await
        .map(|(socket, _)| socket)
        .ok();
    let mut shown = Shown {
        bar: report.stages(),
        last: None,
    };
    let mut view = api.get(&path).await?;
    shown.view(report, &view);
    while !is_final(view["status"].as_str().unwrap_or_default()) {
        match listen(&mut events).await {
            Heard::Event(event) if event["job_id"] == job_id && event.get("type").is_none() => {
                shown.show(report, &event["status"], &event["stage"], &event["percent"]);
                if is_final(event["status"].as_str().unwrap_or_default()) {
                    view = api.get(&path).await?;
                }
            }
            Heard::Event(_) => {}
            Heard::Nothing => view = api.get(&path).await?,
            Heard::Lost => {
                events = None;
                view = api.get(&path).await?;
            }
        }
    }
    shown.view(report, &view);
    shown.bar.finish();
    Ok(view)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What listening for an event brought.
enum Heard {
    Event(Value),
    /// Nothing for a while (or no connection): time to read the status.
    Nothing,
    /// The connection closed or broke.
    Lost,
}

async fn listen(events: &mut Option<Socket>) -> Heard {
    let Some(socket) = events.as_mut() else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return Heard::Nothing;
    };
    match tokio::time::timeout(QUIET, socket.next()).await {
        Ok(Some(Ok(Message::Text(message)))) => {
            Heard::Event(serde_json::from_str(&message).unwrap_or_default())
        }
        Ok(Some(Ok(_))) => Heard::Event(Value::Null),
        Ok(None) | Ok(Some(Err(_))) => Heard::Lost,
        Err(_) => Heard::Nothing,
    }
}

/// The stage bar, and what the user was last told, so a line is printed per change only.
struct Shown {
    bar: indicatif::ProgressBar,
    last: Option<(String, u64)>,
}

impl Shown {
    /// A job's view, as the API answers it.
    fn view(&mut self, report: &Report, view: &Value) {
        self.show(
            report,
            &view["status"],
            &view["stage"],
            &view["progress"]["percent"],
        );
    }

    fn show(&mut self, report: &Report, status: &Value, stage: &Value, percent: &Value) {
        let stage = stage
            .as_str()
            .or(status.as_str())
            .unwrap_or("queued")
            .to_owned();
        let percent = percent.as_u64().unwrap_or(0).min(100);
        self.bar.set_message(stage.clone());
        self.bar.set_position(percent);
        let now = (stage, percent);
        if self.last.as_ref() != Some(&now) {
            report.line(&format!("{} {}%", now.0, now.1));
            self.last = Some(now);
        }
    }
}
