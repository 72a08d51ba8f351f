//! `ringmq-console --namesrv ADDR --listen 127.0.0.1:8080`: the web console.
//!
//! Two threads: a glommio executor runs ringmq-client against the cluster (see `bridge`), and a
//! single-threaded tokio runtime runs the HTTP server (axum). The front end (HTML, JS, CSS) is
//! compiled into the binary; no CDN is needed.

mod bridge;
mod consumers;
mod error;
mod http;
mod messages;
mod remote;
mod sampler;
mod topics;

use std::net::SocketAddr;

use clap::Parser;
use ringmq_client::Credentials;

use crate::bridge::Bridge;
use crate::error::ConsoleError;
use crate::remote::RemoteConfig;

// No `Debug`: the struct holds the secret key.
#[derive(Parser)]
#[command(name = "ringmq-console", version, about = "ringmq web console")]
struct Cli {
    /// Name server address(es), `ip:port[;ip:port]`.
    #[arg(long, default_value = "127.0.0.1:9876")]
    namesrv: String,
    /// Address to serve HTTP on. Loopback by default: the console can change the cluster.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// ACL access key for brokers with `aclEnable=true` (default: `RINGMQ_ACCESS_KEY`).
    #[arg(long)]
    access_key: Option<String>,
    /// ACL secret key (default: `RINGMQ_SECRET_KEY`).
    #[arg(long)]
    secret_key: Option<String>,
    /// Per-request timeout towards name servers and brokers.
    #[arg(long, default_value_t = 2_000)]
    request_timeout_ms: u64,
    /// How often brokers' counters and groups' lag are sampled for the charts.
    #[arg(long, default_value_t = 2_000)]
    sample_interval_ms: u64,
}

fn main() -> Result<(), ConsoleError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let credentials =
        Credentials::from_flags_or_env(cli.access_key.as_deref(), cli.secret_key.as_deref());
    let (bridge, remoting) = Bridge::start(RemoteConfig {
        namesrv: cli.namesrv.clone(),
        credentials,
        request_timeout_ms: cli.request_timeout_ms,
        sample_interval_ms: cli.sample_interval_ms,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ConsoleError::Start(e.to_string()))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .map_err(|e| ConsoleError::Start(format!("cannot listen on {}: {e}", cli.listen)))?;
        tracing::info!(listen = %cli.listen, namesrv = %cli.namesrv, "ringmq-console serving");
        axum::serve(listener, http::router(bridge))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| ConsoleError::Start(e.to_string()))
    })?;
    drop(remoting);
    Ok(())
}
