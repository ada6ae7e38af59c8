//! `GET /metrics` on a listener of its own, apart from the public port: the API and each
//! worker serve their own. With a token configured, a scrape must send it as a bearer token.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{body::Incoming, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

/// Histograms keep their samples until the next scrape; without scrapes they are folded
/// into their buckets this often, so memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// A scraper that does not finish its request within this long is dropped.
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);

/// A bound metrics listener; [`MetricsListener::serve`] answers on it.
pub struct MetricsListener {
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
}

struct Endpoint {
    recorder: PrometheusHandle,
    token: Option<String>,
}

impl MetricsListener {
    /// Binds `address` (port 0 picks one: see [`MetricsListener::local_addr`]) and installs
    /// the process's recorder.
    pub async fn bind(address: SocketAddr, token: Option<String>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let endpoint = Arc::new(Endpoint {
            recorder: crate::metrics::recorder(),
            token,
        });
        Ok(Self { listener, endpoint })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Answers scrapes until dropped.
    pub async fn serve(self) {
        let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = upkeep.tick() => {
                    self.endpoint.recorder.run_upkeep();
                    continue;
                }
            };
            let stream = match stream {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics listener could not accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let endpoint = self.endpoint.clone();
            let service = hyper::service::service_fn(move |request| {
                let answer = endpoint.answer(&request);
                async move { Ok::<_, Infallible>(answer) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::spawn(tokio::time::timeout(CONNECTION_LIMIT, connection));
        }
    }
}

impl Endpoint {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != "/metrics" {
            return plain(StatusCode::NOT_FOUND, "Only /metrics is served here\n");
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Use GET\n");
        }
        if !self.authorised(request.headers().get(AUTHORIZATION)) {
            let mut refused = plain(StatusCode::UNAUTHORIZED, "A bearer token is required\n");
            refused
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return refused;
        }
        let mut response = Response::new(Full::new(Bytes::from(self.recorder.render())));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    fn authorised(&self, header: Option<&HeaderValue>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let sent = header
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        bool::from(sent.ct_eq(token.as_bytes()))
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
