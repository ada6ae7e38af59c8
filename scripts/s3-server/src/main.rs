//! `s3-dev-server --host H --port P --access-key AK --secret-key SK ROOT`: S3 over HTTP on a
//! directory, for development and tests only.

use std::{error::Error, path::PathBuf};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
};
use s3s::{auth::SimpleAuth, service::S3ServiceBuilder};
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
    let service = service.build();
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
