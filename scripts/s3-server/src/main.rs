//! `s3-dev-server --host H --port P --access-key AK --secret-key SK ROOT`: S3 over HTTP on a
//! directory, for development and tests only.
//!
//! It answers CORS as a bucket whose rule lets any origin GET, HEAD and PUT does: the web app
//! sends direct-upload parts to presigned URLs from the browser. The signature in each URL is
//! the authorisation, and no cookies are involved, so `*` gives nothing away.
//!
//! Like AWS (`HeadersNotSigned`), it refuses a presigned request carrying an `x-amz-*` header
//! its URL did not sign: s3s would act on it (an `x-amz-copy-source` turns a part upload into
//! a copy of any object in the bucket).

use std::{error::Error, path::PathBuf};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
};
use hyper::{
    body::Incoming,
    header::{self, HeaderValue},
    Method, Request, Response, StatusCode,
};
use s3s::{
    auth::SimpleAuth,
    service::{S3Service, S3ServiceBuilder},
    Body, HttpError, HttpResponse,
};
use tokio::net::TcpListener;

struct Options {
    host: String,
    port: u16,
    access_key: String,
    secret_key: String,
    root: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut host, mut port, mut access_key, mut secret_key, mut root) =
        ("127.0.0.1".to_owned(), 9000, None, None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--access-key" => access_key = Some(value()?),
            "--secret-key" => secret_key = Some(value()?),
            _ if !arg.starts_with('-') => root = Some(PathBuf::from(arg)),
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    Ok(Options {
        host,
        port,
        access_key: access_key.ok_or("--access-key is required")?,
        secret_key: secret_key.ok_or("--secret-key is required")?,
        root: root.ok_or("the data directory is required")?,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let options = options()?;
    let store = s3s_fs::FileSystem::new(&options.root)
        .map_err(|err| format!("{}: {err:?}", options.root.display()))?;
    let mut service = S3ServiceBuilder::new(store);
    service.set_auth(SimpleAuth::from_single(options.access_key, options.secret_key));
    let service = Cors(service.build());
    let listener = TcpListener::bind((options.host.as_str(), options.port)).await?;
    let http = Builder::new(TokioExecutor::new());
    loop {
        let (socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        let connection = http.serve_connection(TokioIo::new(socket), service.clone());
        let connection = connection.into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// The S3 service behind the CORS answers a bucket rule would give.
#[derive(Clone)]
struct Cors(S3Service);

impl hyper::service::Service<Request<Incoming>> for Cors {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, HttpError>> + Send>,
    >;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let preflight = request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let s3 = self.0.clone();
        let unsigned = unsigned_amz_header(&request);
        Box::pin(async move {
            let mut response = if preflight {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                response
            } else if let Some(name) = unsigned {
                headers_not_signed(&name)
            } else {
                hyper::service::Service::call(&s3, request).await?
            };
            let headers = response.headers_mut();
            let mut set = |name, value| headers.insert(name, HeaderValue::from_static(value));
            set(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
            set(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, PUT");
            set(header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type");
            set(header::ACCESS_CONTROL_EXPOSE_HEADERS, "etag");
            set(header::ACCESS_CONTROL_MAX_AGE, "3600");
            Ok(response)
        })
    }
}

/// An `x-amz-*` header of a presigned request that its `X-Amz-SignedHeaders` does not list.
fn unsigned_amz_header(request: &Request<Incoming>) -> Option<String> {
    let query = request.uri().query()?;
    let signed = query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.eq_ignore_ascii_case("X-Amz-SignedHeaders").then(|| value.replace("%3B", ";"))
    })?;
    let signed: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    request
        .headers()
        .keys()
        .map(|name| name.as_str())
        .find(|name| name.starts_with("x-amz-") && !signed.iter().any(|s| s == name))
        .map(str::to_owned)
}

/// AWS's answer to an unsigned `x-amz-*` header on a presigned request.
fn headers_not_signed(name: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
         <Message>There were headers present in the request which were not signed</Message>\
         <HeadersNotSigned>{name}</HeadersNotSigned></Error>"
    );
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}
