//! The request log: one JSON line per request on stderr (method, path,
//! status, milliseconds), through tower-http's trace layer. The command that
//! runs the service installs the writer ([`init`]); a library caller can
//! install its own `tracing` subscriber instead.

use axum::body::Body;
use axum::http::{Request, Response};
use std::time::Duration;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

type MakeSpan = fn(&Request<Body>) -> Span;
type OnResponse = fn(&Response<Body>, Duration, &Span);

/// The layer that logs each request when its answer is sent.
pub fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse> {
    TraceLayer::new_for_http().make_span_with(span as MakeSpan).on_request(()).on_response(answered as OnResponse)
}

fn span(request: &Request<Body>) -> Span {
    tracing::info_span!("request", method = %request.method(), path = request.uri().path())
}

fn answered(response: &Response<Body>, latency: Duration, _: &Span) {
    let ms = (latency.as_secs_f64() * 1e4).round() / 10.0;
    tracing::info!(status = response.status().as_u16(), ms, "answered");
}

/// Writes this module's events to stderr as JSON lines (other crates' events are not shown).
pub fn init() {
    use tracing_subscriber::layer::SubscriberExt;
    let only_requests = tracing_subscriber::filter::Targets::new().with_target(module_path!(), tracing::Level::INFO);
    let subscriber = tracing_subscriber::fmt().json().flatten_event(true).with_current_span(true).with_span_list(false).with_writer(std::io::stderr).finish().with(only_requests);
    // Already set (a second service in one process): keep the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
}
