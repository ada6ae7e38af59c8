//! Following a job live: its events over the WebSocket (authenticated by a single-use
//! ticket, so no token goes into a URL), with a status read now and then in case an event
//! was missed or the connection dropped.

use std::time::Duration;

use contract::jobs::JobView;
use contract::live::{LiveMessage, WsTicket};
use domain::jobs::{JobStatus, Stage};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::api::Api;
use crate::error::CliError;
use crate::report::Report;

/// With no event for this long, the job's status is read instead.
const QUIET: Duration = Duration::from_secs(5);

/// Shows the job's stage and percent until it ends; its final view.
pub async fn until_done(api: &Api, report: &Report, job_id: Uuid) -> Result<JobView, CliError> {
    let path = format!("/api/v2/jobs/{job_id}");
    let ticket: WsTicket = api.post("/api/v2/ws/ticket").await?;
    let address = format!(
        "{}/ws?ticket={}",
        api.server.replacen("http", "ws", 1),
        ticket.ticket
    );
    let mut events = tokio_tungstenite::connect_async(address.as_str())
        .await
        .map(|(socket, _)| socket)
        .ok();
    let mut shown = Shown {
        bar: report.stages(),
        last: None,
    };
    let mut view: JobView = api.get(&path).await?;
    shown.view(report, &view);
    while !view.status.is_final() {
        match listen(&mut events).await {
            Heard::Message(LiveMessage::Job {
                job_id: heard,
                status,
                stage,
                percent,
                ..
            }) if heard == job_id => {
                shown.show(report, status, stage, percent);
                if status.is_final() {
                    view = api.get(&path).await?;
                }
            }
            Heard::Message(_) => {}
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
    Message(LiveMessage),
    /// Nothing for a while, no connection, or a message this version does not know: time
    /// to read the status.
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
        Ok(Some(Ok(Message::Text(message)))) => serde_json::from_str(&message)
            .map(Heard::Message)
            .unwrap_or(Heard::Nothing),
        Ok(Some(Ok(_))) => Heard::Nothing,
        Ok(None) | Ok(Some(Err(_))) => Heard::Lost,
        Err(_) => Heard::Nothing,
    }
}

/// The stage bar, and what the user was last told, so a line is printed per change only.
struct Shown {
    bar: indicatif::ProgressBar,
    last: Option<(String, u8)>,
}

impl Shown {
    fn view(&mut self, report: &Report, view: &JobView) {
        self.show(report, view.status, view.stage, view.progress.percent);
    }

    fn show(&mut self, report: &Report, status: JobStatus, stage: Option<Stage>, percent: u8) {
        let stage = stage.map_or_else(|| status.to_string(), |stage| stage.to_string());
        let percent = percent.min(100);
        self.bar.set_message(stage.clone());
        self.bar.set_position(u64::from(percent));
        let now = (stage, percent);
        if self.last.as_ref() != Some(&now) {
            report.line(&format!("{} {}%", now.0, now.1));
            self.last = Some(now);
        }
    }
}
