//! Request ids, request logging, and the envelope for errors raised outside handlers.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::header::{self, HeaderName, HeaderValue},
    middleware::Next,
    web, Error, HttpMessage,
};
use std::time::{Duration, Instant};

use futures::StreamExt;
use telemetry::metrics;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

use crate::{
    error::{code_of, envelope},
    routes::{
        policy::{Answer, Policy},
        table::RouteTable,
    },
    state::AppState,
};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, available to handlers as request data.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn valid_request_id(value: &HeaderValue) -> Option<String> {
    let id = value.to_str().ok()?;
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| id.to_owned())
}

/// Looks up the route's policy once (later middleware reads it from the request), keeps a
/// well-formed incoming `X-Request-ID` (or makes one) and puts it on the response
/// (the request's span, [`RequestSpan`], carries it on every log line), and turns plain-text
/// error responses from the framework (unknown route, wrong method, bad payload) into the
/// error envelope.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(valid_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(Started(Instant::now()));
    let policy = req
        .app_data::<web::Data<RouteTable>>()
        .expect("the route table is registered")
        .policy(req.method(), req.path());
    req.extensions_mut().insert(policy);
    let mut response = into_envelope(next.call(req).await?.map_into_boxed_body());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    secure(response.headers_mut());
    Ok(response)
}

/// When the request arrived, for its "request finished" line.
#[derive(Clone, Copy)]
struct Started(Instant);

/// The span of one request for `tracing-actix-web`: our request id (the client's, when it
/// sent a well-formed one; the library would always make its own), method, route, the
/// caller once authenticated and, once answered, status, with one "request finished" line
/// and the request's latency in the metrics.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            path = %request.path(),
            user_id = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let Ok(response) = outcome else {
            return DefaultRootSpanBuilder::on_request_end(span, outcome);
        };
        let status = response.status().as_u16();
        span.record("status", status);
        let request = response.request();
        let elapsed = request
            .extensions()
            .get::<Started>()
            .map_or(Duration::ZERO, |started| started.0.elapsed());
        metrics::http_request(
            request.method().as_str(),
            request.match_pattern(),
            status,
            elapsed,
        );
        let elapsed_ms = elapsed.as_millis() as u64;
        span.in_scope(|| tracing::info!(status, elapsed_ms, "request finished"));
    }
}

/// Headers every response carries: no MIME sniffing, no referrer leaks, no framing, and
/// nothing private cached (JSON answers are per caller).
fn secure(headers: &mut header::HeaderMap) {
    let set = |headers: &mut header::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(
            headers,
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        );
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json && !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

/// Drops a request body that stops arriving: a client that sends headers and then a trickle
/// (or nothing) would otherwise hold a connection and a handler for as long as it likes.
pub async fn idle_body_timeout(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // A WebSocket's "body" is the session: it has its own ping and silence rules.
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let idle = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.config.http.body_idle_timeout)
        .filter(|_| !upgrade);
    let Some(idle) = idle else {
        return next.call(req).await;
    };
    let body = req.take_payload();
    let guarded = futures::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(body))),
            Ok(None) => None,
            // The error ends the stream; the body is dropped with it.
            Err(_) => Some((Err(stalled(idle)), None)),
        }
    })
    // Readers such as the multipart parser may poll again after the end.
    .fuse();
    let boxed: std::pin::Pin<Box<dyn futures::Stream<Item = Result<bytes::Bytes, PayloadError>>>> =
        Box::pin(guarded);
    req.set_payload(Payload::from(boxed));
    next.call(req).await
}

fn stalled(idle: std::time::Duration) -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the request body sent nothing for {} s", idle.as_secs()),
    ))
}

fn into_envelope(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    // Our own answers are JSON envelopes, or the pages of a route that answers pages (a
    // share page that is gone).
    let pages = response
        .request()
        .extensions()
        .get::<Policy>()
        .is_some_and(|policy| policy.answer == Answer::Raw);
    let is_ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || (pages && v.starts_with("text/html"))
        });
    if !(status.is_client_error() || status.is_server_error()) || is_ours {
        return response;
    }
    let message = match status.as_u16() {
        404 => "No such route".to_owned(),
        405 => "Method not allowed on this route".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_owned(),
    };
    let (request, original) = response.into_parts();
    let mut replaced = envelope(status, code_of(status), &message, None);
    if let Some(allow) = original.headers().get(header::ALLOW) {
        replaced.headers_mut().insert(header::ALLOW, allow.clone());
    }
    ServiceResponse::new(request, replaced)
}
