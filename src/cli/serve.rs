use anyhow::{Context, Result};
use clap::Args;
use deepsent::model::saved::SavedModel;
use deepsent::serve::http::{serve, Limits};
use deepsent::serve::predict::Predictor;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Serve a fine-tuned model over HTTP (see `src/serve/http.rs` for the API).
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    /// A model saved by `finetune` or `crossval` (.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Largest request body, in MiB.
    #[arg(long, default_value_t = Limits::default().max_body >> 20)]
    max_body_mb: usize,
    /// Largest image, in pixels (width × height, read from the header before decoding).
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    max_pixels: u64,
    /// Pixels of all the images of one request together (a few small
    /// compressed images can take seconds each to decode).
    #[arg(long, default_value_t = Limits::default().decode_budget)]
    decode_budget: u64,
    /// Most files in one multipart request.
    #[arg(long, default_value_t = Limits::default().max_files)]
    max_files: usize,
    /// Requests held at once; more are answered 503.
    #[arg(long, default_value_t = Limits::default().max_in_flight)]
    max_in_flight: usize,
    /// Bodies being received at once, in MiB (each holds its declared length); more are answered 503.
    #[arg(long, default_value_t = Limits::default().receiving_budget >> 20)]
    receiving_budget_mb: usize,
    /// Images per forward pass (concurrent requests are batched together).
    #[arg(long, default_value_t = Limits::default().batch)]
    batch: usize,
    /// Seconds a client has to send a request head.
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs_f64())]
    header_timeout_s: f64,
    /// Longest pause within a request body, in seconds (also the grace before the minimum rate applies).
    #[arg(long, default_value_t = Limits::default().body_stall.as_secs_f64())]
    body_stall_s: f64,
    /// Slowest average upload accepted, in KiB/s.
    #[arg(long, default_value_t = Limits::default().min_upload_rate >> 10)]
    min_upload_kib_s: u64,
    /// Seconds given to the requests in progress after SIGTERM or Ctrl-C; then the rest are cut.
    #[arg(long, default_value_t = Limits::default().grace.as_secs_f64())]
    grace_s: f64,
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let predictor = Predictor::new(SavedModel::load(&a.model)?, &a.device.device()?)?;
    let seconds = |s: f64, flag: &str| Duration::try_from_secs_f64(s).with_context(|| format!("--{flag} {s}: give a number of seconds ≥ 0"));
    let limits = Limits {
        max_body: a.max_body_mb << 20,
        max_pixels: a.max_pixels,
        decode_budget: a.decode_budget,
        max_files: a.max_files,
        max_in_flight: a.max_in_flight,
        receiving_budget: a.receiving_budget_mb << 20,
        batch: a.batch,
        header_timeout: seconds(a.header_timeout_s, "header-timeout-s")?,
        body_stall: seconds(a.body_stall_s, "body-stall-s")?,
        min_upload_rate: a.min_upload_kib_s << 10,
        grace: seconds(a.grace_s, "grace-s")?,
    };
    deepsent::serve::log::init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // The handlers are installed before the address is announced: a client
        // that reads the line and sends SIGTERM at once must get a clean stop.
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(&a.addr).await.with_context(|| format!("listening on {}", a.addr))?;
        println!("listening on http://{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        serve(predictor, limits, listener, shutdown).await
    })?;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or Ctrl-C: stop accepting, finish what is in progress. The
/// handlers are registered when this is called, not when the future is first
/// polled.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing the SIGTERM handler")?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
