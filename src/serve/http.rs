//! The HTTP service (axum on tokio).
//!
//! - `POST /v1/predict`: the raw bytes of one image (`image/jpeg`, `image/png`,
//!   `image/bmp` or `application/octet-stream`; name from `?name=`), or
//!   `multipart/form-data` with one or several files → `{"results": [{"name",
//!   "positive", "label"}]}`.
//! - `GET /healthz` → `ok` (503 once the inference thread has stopped);
//!   `GET /v1/model` → what the model is (its card).
//!
//! Answers to bad requests (`{"error": …}`):
//! 400 empty body, malformed multipart, no file, a multipart part that is not
//! a file; 404 and 405 with the routes; 413 body over the limit or
//! too many files; 415 another content type or an image format other than
//! JPEG/PNG/BMP; 422 a corrupt image, or one with more pixels than allowed
//! (checked from its header, before decoding: decompression bombs);
//! 503 (with `Retry-After`) when the in-flight limit is reached.
//!
//! Memory is bounded: at most `max_in_flight` requests are held, each at most
//! `max_body` bytes and `max_files` images; decoding runs on at most as many
//! threads as cores; one inference thread scores the images of concurrent
//! requests together in batches (one forward pass for many requests).

use super::predict::{Prediction, Predictor};
use crate::preprocess::decode::{decode_bytes, DecodeError};
use crate::preprocess::DEFAULT_MAX_PIXELS;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{oneshot, Semaphore};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body: usize,
    pub max_pixels: u64,
    pub max_files: usize,
    pub max_in_flight: usize,
    /// Images per forward pass of the inference thread.
    pub batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: 16 << 20, max_pixels: DEFAULT_MAX_PIXELS, max_files: 16, max_in_flight: 64, batch: 16 }
    }
}

struct Job {
    image: RgbImage,
    reply: oneshot::Sender<Prediction>,
}

struct App {
    /// False once the inference thread has ended (`/healthz` then fails).
    inference_alive: Arc<AtomicBool>,
    limits: Limits,
    model: serde_json::Value,
    in_flight: Semaphore,
    decoding: Semaphore,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Resizes decoded images as the model stores them (shared with the inference thread's model).
    prepare: Arc<dyn Fn(&RgbImage) -> RgbImage + Send + Sync>,
}

#[derive(Serialize)]
struct Answer {
    name: String,
    positive: f32,
    label: &'static str,
}

#[derive(Serialize)]
struct Problem {
    error: String,
}

fn problem(status: StatusCode, error: impl Into<String>) -> Response {
    (status, Json(Problem { error: error.into() })).into_response()
}

fn decode_status(e: &DecodeError) -> StatusCode {
    match e {
        DecodeError::Unsupported { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        DecodeError::TooLarge { .. } | DecodeError::Corrupt { .. } | DecodeError::TruncatedJpeg { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        DecodeError::Io { .. } => StatusCode::BAD_REQUEST,
        DecodeError::FileTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
    }
}

/// Serves until `shutdown` completes, then finishes the requests in progress.
pub async fn serve(predictor: Predictor, limits: Limits, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let model = serde_json::json!({
        "spec": predictor.spec_name,
        "backbone": predictor.card.backbone,
        "pretrained_from": predictor.card.pretrained_from,
        "trained_on": predictor.card.trained_on,
        "surgery": predictor.card.surgery,
        "cv_accuracy": predictor.card.cv_accuracy,
        "test_accuracy": predictor.card.test_accuracy,
        "created": predictor.card.created,
        "deepsent_version": predictor.card.deepsent_version,
    });
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let preprocess = predictor.preprocess.clone();
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let batch = limits.batch.max(1);
    let inference_alive = Arc::new(AtomicBool::new(true));
    let alive = Alive(inference_alive.clone());
    std::thread::Builder::new().name("inference".into()).spawn(move || {
        let _alive = alive;
        infer(predictor, queue, batch)
    })?;
    let app = Arc::new(App {
        inference_alive,
        in_flight: Semaphore::new(limits.max_in_flight),
        decoding: Semaphore::new(cores),
        limits: limits.clone(),
        model,
        jobs,
        prepare: Arc::new(move |img| preprocess.resize_image(img)),
    });
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/model", get(model_info))
        .route("/v1/predict", post(predict))
        .fallback(|method: Method, uri: Uri| async move { problem(StatusCode::NOT_FOUND, format!("no route {method} {uri}: {ROUTES}")) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move { problem(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {uri}: {ROUTES}")) })
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(axum::middleware::from_fn_with_state(limits.max_body, refuse_declared_oversize))
        .layer(axum::middleware::from_fn(log))
        .with_state(app);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// The inference thread: takes every job waiting (up to `batch`) and scores them in one pass.
fn infer(predictor: Predictor, queue: std::sync::mpsc::Receiver<Job>, batch: usize) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < batch {
            match queue.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let images: Vec<&RgbImage> = jobs.iter().map(|j| &j.image).collect();
        let predictions = predictor.predict(&images, false, batch);
        for (job, p) in jobs.into_iter().zip(predictions) {
            // The client may have gone away: nothing to answer then.
            let _ = job.reply.send(p);
        }
    }
}

/// What the service answers, for 404 and 405 bodies.
const ROUTES: &str = "the service has GET /healthz, GET /v1/model and POST /v1/predict";

/// Sets its flag to false when dropped: when the inference thread ends,
/// returning or unwinding from a panic.
struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// `ok`, or 503 once the inference thread has stopped: every prediction
/// would fail, so a supervisor should restart the service.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    if app.inference_alive.load(Ordering::SeqCst) {
        "ok".into_response()
    } else {
        problem(StatusCode::SERVICE_UNAVAILABLE, "the inference thread has stopped")
    }
}

async fn model_info(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.model.clone())
}

#[derive(Deserialize)]
struct NameQuery {
    name: Option<String>,
}

async fn predict(State(app): State<Arc<App>>, Query(q): Query<NameQuery>, headers: HeaderMap, request: Request) -> Response {
    let Ok(_permit) = app.in_flight.try_acquire() else {
        discard_body(request.into_body(), app.limits.max_body).await;
        let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, "too many requests in progress; retry shortly");
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let files = if content_type.starts_with("multipart/form-data") {
        match read_multipart(&app, request).await {
            Ok(f) => f,
            Err(r) => return r,
        }
    } else if ["image/jpeg", "image/png", "image/bmp", "application/octet-stream"].iter().any(|t| content_type.starts_with(t)) {
        match Bytes::from_request(request, &()).await {
            Ok(b) => vec![(q.name.unwrap_or_else(|| "image".into()), b)],
            Err(e) => return problem(e.status(), e.body_text()),
        }
    } else {
        let shown = if content_type.is_empty() { "none".to_string() } else { content_type };
        discard_body(request.into_body(), app.limits.max_body).await;
        return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("content type {shown}: send image/jpeg, image/png, image/bmp, application/octet-stream or multipart/form-data"));
    };
    if files.is_empty() || files.iter().any(|(_, b)| b.is_empty()) {
        return problem(StatusCode::BAD_REQUEST, "no image in the request (empty body or file)");
    }
    // Decode on the blocking pool, at most one request per core at a time.
    let decoded = {
        let _slot = app.decoding.acquire().await.expect("the semaphore is never closed");
        let (max_pixels, prepare) = (app.limits.max_pixels, app.prepare.clone());
        let work = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|(name, bytes)| decode_bytes(&bytes, Path::new(&name), max_pixels).map(|img| (name, prepare(&img))))
                .collect::<Result<Vec<_>, DecodeError>>()
        });
        match work.await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return problem(decode_status(&e), e.to_string()),
            Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, format!("decoding failed: {e}")),
        }
    };
    let mut waiting = Vec::with_capacity(decoded.len());
    for (name, image) in decoded {
        let (reply, answer) = oneshot::channel();
        if app.jobs.send(Job { image, reply }).is_err() {
            return problem(StatusCode::INTERNAL_SERVER_ERROR, "the inference thread has stopped");
        }
        waiting.push((name, answer));
    }
    let mut results = Vec::with_capacity(waiting.len());
    for (name, answer) in waiting {
        match answer.await {
            Ok(p) => results.push(Answer { name, positive: p.positive, label: p.label }),
            Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "the inference thread has stopped"),
        }
    }
    Json(serde_json::json!({ "results": results })).into_response()
}

/// The file parts of a multipart body: (name, bytes), at most `max_files`.
///
/// The body is read whole first (it is bounded by `max_body`, and its files
/// are held anyway): the multipart parser stops at the closing boundary, and
/// hyper closes a connection whose body was left unread, even by the final
/// CRLF, which the client sees as a broken pipe.
async fn read_multipart(app: &App, request: Request) -> Result<Vec<(String, Bytes)>, Response> {
    let (parts, body) = request.into_parts();
    let body = Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await.map_err(|e| problem(e.status(), e.body_text()))?;
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let mut multipart = Multipart::from_request(request, &()).await.map_err(|e| problem(e.status(), e.body_text()))?;
    let mut files = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(problem(e.status(), format!("multipart body: {}", e.body_text()))),
        };
        if files.len() == app.limits.max_files {
            return Err(problem(StatusCode::PAYLOAD_TOO_LARGE, format!("more than {} files in one request", app.limits.max_files)));
        }
        // Only file parts are images: a text field is a client's mistake, not an image to decode.
        let Some(name) = field.file_name().map(str::to_string) else {
            let part = field.name().unwrap_or("").to_string();
            return Err(problem(StatusCode::BAD_REQUEST, format!("multipart part `{part}` is not a file: send images as file parts (curl -F image=@photo.jpg)")));
        };
        let bytes = field.bytes().await.map_err(|e| problem(e.status(), format!("multipart body: {}", e.body_text())))?;
        files.push((name, bytes));
    }
    Ok(files)
}

/// 413 for a body whose declared length is over the limit, without handing
/// it to the route. Bodies without a declared length are limited by
/// `DefaultBodyLimit` as they stream.
async fn refuse_declared_oversize(State(max_body): State<usize>, request: Request, next: axum::middleware::Next) -> Response {
    let declared = request.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let Some(len) = declared.filter(|&n| n > max_body) else {
        return next.run(request).await;
    };
    if len <= max_body.saturating_mul(4) {
        discard_body(request.into_body(), max_body).await;
    }
    problem(StatusCode::PAYLOAD_TOO_LARGE, format!("body of {len} bytes is over the limit of {max_body}"))
}

/// Reads and drops the body of a request answered without it (up to 4× the
/// limit; beyond, the connection is closed unread). hyper closes a connection
/// whose request body was left unread: a client still sending it would see a
/// broken pipe instead of the answer, and one that had pooled the connection
/// would fail its next request on it.
async fn discard_body(mut body: axum::body::Body, max_body: usize) {
    use http_body_util::BodyExt;
    let mut read = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |d| d.len());
        if read > max_body.saturating_mul(4) {
            break;
        }
    }
}

/// One JSON line per request on stderr.
async fn log(request: Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (request.method().to_string(), request.uri().path().to_string());
    let t0 = std::time::Instant::now();
    let response = next.run(request).await;
    let line = serde_json::json!({
        "time": crate::report::timestamp(),
        "method": method,
        "path": path,
        "status": response.status().as_u16(),
        "ms": (t0.elapsed().as_secs_f64() * 1e4).round() / 10.0,
    });
    eprintln!("{line}");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_panics_clears_its_alive_flag() {
        let flag = Arc::new(AtomicBool::new(true));
        let alive = Alive(flag.clone());
        let thread = std::thread::spawn(move || {
            let _alive = alive;
            panic!("inference failed");
        });
        assert!(thread.join().is_err());
        assert!(!flag.load(Ordering::SeqCst));
    }
}
