//! The scale bench's worker (`scripts/bench`, part `scale`): the real worker, configured from
//! the environment like the product's, whose renders are only a wait with progress ticks.
//! `SIM_RENDER_SECS` is how long each lasts; `SIM_EFFECTS` the file each finished render
//! appends its job's id to, where the bench counts jobs run twice.

use std::time::Duration;

use anyhow::Context;
use settings::Config;
use worker::simulated::SimulatedRender;
use worker::Render;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    telemetry::logs::init("warn");
    let config = Config::from_env().context("invalid configuration")?;
    let seconds: f64 = env_var("SIM_RENDER_SECS")?.parse()?;
    let render = SimulatedRender::new(
        Duration::from_secs_f64(seconds),
        env_var("SIM_EFFECTS")?.into(),
    )?;
    worker::run_with(
        config,
        async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler installs");
            terminate.recv().await;
        },
        Render::Simulated(render),
    )
    .await
}

fn env_var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is required"))
}
