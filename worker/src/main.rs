use anyhow::Context;
use settings::Config;

fn main() -> anyhow::Result<std::process::ExitCode> {
    // Media mode runs one job's media work for a worker, without a runtime of its own.
    if std::env::args().nth(1).as_deref() == Some(worker::sandbox::MEDIA_MODE_ARG) {
        return Ok(worker::sandbox::run_media_mode());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve() -> anyhow::Result<()> {
    telemetry::logs::init("info");
    let config = Config::from_env().context("invalid configuration")?;
    worker::run(config, async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down: no new jobs, finishing running ones");
    })
    .await
}
