//! The HTTP service (axum on tokio).
//!
//! - `POST /v1/predict`: the raw bytes of one image (`image/jpeg`, `image/png`,
//!   `image/bmp` or `application/octet-stream`; name from `?name=`), or
//!   `multipart/form-data` with one or several files → `{"results": [{"name",
//!   "positive", "label"}]}`.
//! - `POST /v1/explain`: one image as `/v1/predict` takes it → its sentiment
//!   map (`eval::maps`): the overlay PNG, or with `?format=json` the map's
//!   values; `?oversample=true` maps the 10 views.
//! - `GET /healthz` → `ok` (503 once the inference thread has stopped);
//!   `GET /v1/model` → what the model is (its card).
//!
//! Answers to bad requests (`{"error": …}`):
//! 400 empty body, malformed multipart, no file, a multipart part that is not
//! a file; 404 and 405 with the routes; 408 a body that stalls or arrives
//! below the minimum rate; 413 body over the limit, too many files, or more
//! pixels in one request than its decode budget; 415 another content type or
//! an image format other than JPEG/PNG/BMP; 422 a corrupt image, or one with
//! more pixels than allowed (checked from its header, before decoding:
//! decompression bombs); 503 (with `Retry-After`) when the bodies being
//! received or the requests in progress are at their limit.
//!
//! Slow and hostile clients: a request head must arrive within
//! `header_timeout`; a body may pause at most `body_stall` between chunks
//! and must arrive at `min_upload_rate` on average (after `body_stall` of
//! grace). A body being received holds only its declared size out of
//! `receiving_budget`, not a slot of the requests in progress, so slow
//! uploads cannot starve the others. Each request's images may total at most
//! `decode_budget` pixels (read from their headers), so a few small
//! compressed images cannot take the decoders for long.
//!
//! Memory is bounded: bodies being received hold at most `receiving_budget`
//! bytes; at most `max_in_flight` received requests are held, each at most
//! `max_body` bytes and `max_files` images; decoding runs on at most twice as
//! many threads as cores (one lane for requests of many pixels, one for the
//! rest, so ordinary photos do not queue behind huge ones); one inference thread scores the images of concurrent
//! requests together in batches (one forward pass for many requests).

use super::predict::{Prediction, Predictor};
use crate::eval::maps::{ImageMap, Mapper};
use crate::preprocess::decode::{decode_bytes, dimensions, DecodeError};
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
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body: usize,
    /// Pixels of one image (width × height from its header).
    pub max_pixels: u64,
    /// Pixels of all the images of one request together.
    pub decode_budget: u64,
    pub max_files: usize,
    /// Received requests held at once (decoding, queued or being scored).
    pub max_in_flight: usize,
    /// Bytes of the bodies being received at once (each holds its declared length, or `max_body`).
    pub receiving_budget: usize,
    /// Images per forward pass of the inference thread.
    pub batch: usize,
    /// Time to send a request head.
    pub header_timeout: Duration,
    /// Longest pause within a body, and the grace before `min_upload_rate` applies.
    pub body_stall: Duration,
    /// Bytes per second a body must average.
    pub min_upload_rate: u64,
    /// Time given to the requests in progress after a shutdown signal.
    pub grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 16 << 20,
            max_pixels: DEFAULT_MAX_PIXELS,
            decode_budget: DEFAULT_MAX_PIXELS,
            max_files: 16,
            max_in_flight: 64,
            receiving_budget: 256 << 20,
            batch: 16,
            header_timeout: Duration::from_secs(10),
            body_stall: Duration::from_secs(10),
            min_upload_rate: 64 << 10,
            grace: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// How long a body of `bytes` may take to arrive.
    fn body_deadline(&self, bytes: usize) -> Duration {
        self.body_stall + Duration::from_secs_f64(bytes as f64 / self.min_upload_rate.max(1) as f64)
    }
}

/// Units of the receiving budget (a tokio semaphore counts in `u32` permits).
const BUDGET_UNIT: usize = 1 << 10;

enum Job {
    Predict {
        image: RgbImage,
        /// The prediction, or why the model could not give one.
        reply: oneshot::Sender<Result<Prediction, String>>,
    },
    Explain {
        image: RgbImage,
        oversample: bool,
        reply: oneshot::Sender<Result<(Prediction, ImageMap), String>>,
    },
}

struct App {
    /// False once the inference thread has ended (`/healthz` then fails).
    inference_alive: Arc<AtomicBool>,
    limits: Limits,
    model: serde_json::Value,
    /// `receiving_budget` in units of `BUDGET_UNIT` bytes.
    receiving: Semaphore,
    in_flight: Semaphore,
    /// Decoding lanes, a slot per core each: requests over `HEAVY_DECODE` pixels, and the rest.
    decoding_heavy: Semaphore,
    decoding_light: Semaphore,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Resizes decoded images as the model stores them (shared with the inference thread's model).
    prepare: Arc<dyn Fn(&RgbImage) -> RgbImage + Send + Sync>,
    /// How `/v1/explain` maps (method, layer), or why the model cannot be mapped.
    mapped: Result<(String, String), String>,
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

fn busy(what: &str) -> Response {
    let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, format!("{what}; retry shortly"));
    r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    r
}

/// Serves until `shutdown` completes, then finishes the requests in progress
/// (for at most `limits.grace`).
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
    let mapped = Mapper::new(&predictor.net, None, None).map(|m| (m.method.to_string(), m.layer.clone()));
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
        receiving: Semaphore::new(limits.receiving_budget.div_ceil(BUDGET_UNIT).min(Semaphore::MAX_PERMITS)),
        in_flight: Semaphore::new(limits.max_in_flight),
        decoding_heavy: Semaphore::new(cores),
        decoding_light: Semaphore::new(cores),
        limits: limits.clone(),
        model,
        jobs,
        prepare: Arc::new(move |img| preprocess.resize_image(img)),
        mapped,
    });
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/model", get(model_info))
        .route("/v1/predict", post(predict))
        .route("/v1/explain", post(explain))
        .fallback(|method: Method, uri: Uri| async move { problem(StatusCode::NOT_FOUND, format!("no route {method} {uri}: {ROUTES}")) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move { problem(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {uri}: {ROUTES}")) })
        // The multipart parser reads the buffered body under this limit (its own default is 2 MB).
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_stall))
        .layer(axum::middleware::from_fn_with_state(limits.max_body, refuse_declared_oversize))
        .layer(super::log::layer())
        .with_state(app);
    let cut = super::listen::listen(listener, router, limits.header_timeout, limits.grace, shutdown).await;
    if cut > 0 {
        eprintln!("{cut} connection(s) still open after the grace period of {:?}: closed", limits.grace);
    }
    Ok(())
}

/// The inference thread: takes every job waiting (up to `batch`), scores
/// the predictions in one pass and maps the explanations one by one.
fn infer(predictor: Predictor, queue: std::sync::mpsc::Receiver<Job>, batch: usize) {
    // CAM where the network allows it, else Grad-CAM; a network that cannot
    // be mapped answers every explanation with why.
    let mapper = Mapper::new(&predictor.net, None, None);
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < batch {
            match queue.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (mut images, mut replies) = (Vec::new(), Vec::new());
        for job in jobs {
            match job {
                Job::Predict { image, reply } => {
                    images.push(image);
                    replies.push(reply);
                }
                // The client may have gone away: nothing to answer then.
                Job::Explain { image, oversample, reply } => {
                    let answer = match &mapper {
                        Ok(m) => predictor.explain(m, &image, oversample).map_err(|e| format!("{e:#}")),
                        Err(why) => Err(format!("this model cannot be mapped: {why}")),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
        if images.is_empty() {
            continue;
        }
        let refs: Vec<&RgbImage> = images.iter().collect();
        match predictor.predict(&refs, false, batch) {
            Ok(predictions) => {
                for (reply, p) in replies.into_iter().zip(predictions) {
                    let _ = reply.send(Ok(p));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(format!("{e:#}")));
                }
            }
        }
    }
}

/// What the service answers, for 404 and 405 bodies.
const ROUTES: &str = "the service has GET /healthz, GET /v1/model, POST /v1/predict and POST /v1/explain";

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

/// One image of a request: its name, resized as the model stores images,
/// and (where asked for) as decoded.
struct Received {
    name: String,
    prepared: RgbImage,
    original: Option<RgbImage>,
}

/// A request's images, received, checked and decoded as every route does,
/// with the slot of the requests in progress that the request holds.
async fn receive_images<'a>(app: &'a App, name: Option<String>, headers: &HeaderMap, request: Request, keep_original: bool) -> Result<(Vec<Received>, tokio::sync::SemaphorePermit<'a>), Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let multipart = content_type.starts_with("multipart/form-data");
    if !multipart && !["image/jpeg", "image/png", "image/bmp", "application/octet-stream"].iter().any(|t| content_type.starts_with(t)) {
        let shown = if content_type.is_empty() { "none".to_string() } else { content_type };
        discard_body(request.into_body(), app.limits.max_body).await;
        return Err(problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("content type {shown}: send image/jpeg, image/png, image/bmp, application/octet-stream or multipart/form-data")));
    }
    let (parts, body) = request.into_parts();
    let body = receive(app, &parts.headers, body).await?;
    // Held from here on: the body is in memory, and decoding and scoring follow.
    let Ok(permit) = app.in_flight.try_acquire() else {
        return Err(busy("too many requests in progress"));
    };
    let files = if multipart { read_multipart(app, Request::from_parts(parts, axum::body::Body::from(body))).await? } else { vec![(name.unwrap_or_else(|| "image".into()), body)] };
    if files.is_empty() || files.iter().any(|(_, b)| b.is_empty()) {
        return Err(problem(StatusCode::BAD_REQUEST, "no image in the request (empty body or file)"));
    }
    let pixels = within_decode_budget(&files, app.limits.decode_budget)?;
    // Decode on the blocking pool, at most one request per core and lane at a time.
    let lane = if pixels > HEAVY_DECODE { &app.decoding_heavy } else { &app.decoding_light };
    let _slot = lane.acquire().await.expect("the semaphore is never closed");
    let (max_pixels, prepare) = (app.limits.max_pixels, app.prepare.clone());
    let work = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .map(|(name, bytes)| decode_bytes(&bytes, Path::new(&name), max_pixels).map(|img| Received { name, prepared: prepare(&img), original: keep_original.then_some(img) }))
            .collect::<Result<Vec<_>, DecodeError>>()
    });
    match work.await {
        Ok(Ok(d)) => Ok((d, permit)),
        Ok(Err(e)) => Err(problem(decode_status(&e), e.to_string())),
        Err(e) => Err(problem(StatusCode::INTERNAL_SERVER_ERROR, format!("decoding failed: {e}"))),
    }
}

async fn predict(State(app): State<Arc<App>>, Query(q): Query<NameQuery>, headers: HeaderMap, request: Request) -> Response {
    let (decoded, _permit) = match receive_images(&app, q.name, &headers, request, false).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut waiting = Vec::with_capacity(decoded.len());
    for Received { name, prepared, .. } in decoded {
        let (reply, answer) = oneshot::channel();
        if app.jobs.send(Job::Predict { image: prepared, reply }).is_err() {
            return problem(StatusCode::INTERNAL_SERVER_ERROR, "the inference thread has stopped");
        }
        waiting.push((name, answer));
    }
    let mut results = Vec::with_capacity(waiting.len());
    for (name, answer) in waiting {
        match answer.await {
            Ok(Ok(p)) => results.push(Answer { name, positive: p.positive, label: p.label }),
            Ok(Err(e)) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e),
            Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "the inference thread has stopped"),
        }
    }
    Json(serde_json::json!({ "results": results })).into_response()
}

#[derive(Deserialize)]
struct ExplainQuery {
    name: Option<String>,
    /// `png` (the overlay, the default) or `json` (the map's values).
    format: Option<String>,
    /// Map the 10 oversampled views instead of the centre crop.
    #[serde(default)]
    oversample: bool,
    /// Side of the JSON map (over the image warped to a square, as the network sees it).
    size: Option<usize>,
}

/// The largest JSON map side: 256 × 256 numbers are already a few MB of text.
const MAX_JSON_MAP: usize = 256;

impl ExplainQuery {
    /// What is asked for: JSON (else the overlay PNG), and the JSON map's side.
    fn answer(&self) -> Result<(bool, usize), String> {
        let json = match self.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("png") => false,
            Some("json") => true,
            Some(other) => return Err(format!("format {other:?}: png or json")),
        };
        let size = self.size.unwrap_or(64);
        if !(1..=MAX_JSON_MAP).contains(&size) {
            return Err(format!("size {size}: between 1 and {MAX_JSON_MAP}"));
        }
        Ok((json, size))
    }
}

/// `POST /v1/explain`: one image (as `/v1/predict` takes it, with its limits
/// and errors) → its sentiment map: the overlay PNG (red positive, blue
/// negative; the answer also in the `x-positive` and `x-label` headers), or
/// with `?format=json` `{"name", "positive", "label", "method", "layer",
/// "size", "map": [[…]]}`, positive values evidence for positive.
async fn explain(State(app): State<Arc<App>>, Query(q): Query<ExplainQuery>, headers: HeaderMap, request: Request) -> Response {
    let (json, size) = match q.answer() {
        Ok(answer) => answer,
        Err(why) => {
            // Read the body first: answered unread, hyper closes the
            // connection under a client still sending it (a broken pipe, not
            // this answer).
            discard_body(request.into_body(), app.limits.max_body).await;
            return problem(StatusCode::BAD_REQUEST, why);
        }
    };
    let (mut decoded, _permit) = match receive_images(&app, q.name, &headers, request, true).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    if decoded.len() != 1 {
        return problem(StatusCode::BAD_REQUEST, format!("{} images: /v1/explain maps one image a request", decoded.len()));
    }
    let (method, layer) = match &app.mapped {
        Ok(m) => m.clone(),
        Err(why) => return problem(StatusCode::UNPROCESSABLE_ENTITY, format!("this model cannot be mapped: {why}")),
    };
    let Received { name, prepared, original } = decoded.remove(0);
    let original = original.expect("kept for the overlay");
    let (reply, answer) = oneshot::channel();
    if app.jobs.send(Job::Explain { image: prepared, oversample: q.oversample, reply }).is_err() {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "the inference thread has stopped");
    }
    let (prediction, map) = match answer.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(_) => return problem(StatusCode::INTERNAL_SERVER_ERROR, "the inference thread has stopped"),
    };
    if json {
        let grid = map.map.resized(size, size);
        let rows: Vec<&[f32]> = grid.values.chunks(size).collect();
        return Json(serde_json::json!({ "name": name, "positive": prediction.positive, "label": prediction.label, "method": method, "layer": layer, "size": size, "map": rows })).into_response();
    }
    let rendered = tokio::task::spawn_blocking(move || {
        let shown = prediction.positive_10crop.unwrap_or(prediction.positive);
        let text = crate::report::overlay::caption(shown, prediction.label, map.views);
        crate::report::overlay::overlay(&original, &map.map, &text, crate::report::overlay::MAX_SIDE).and_then(|o| crate::report::overlay::png_bytes(&o)).map(|png| (png, shown, prediction.label))
    })
    .await;
    match rendered {
        Ok(Ok((png, shown, label))) => {
            let headers = [(header::CONTENT_TYPE, "image/png".to_string()), (header::HeaderName::from_static("x-positive"), format!("{shown:.6}")), (header::HeaderName::from_static("x-label"), label.to_string())];
            (headers, png).into_response()
        }
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, format!("drawing the overlay: {e:#}")),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, format!("drawing the overlay: {e}")),
    }
}

/// Reads a request body whole, holding its size out of the receiving budget
/// while it arrives: 503 when the budget is spent, 408 when it stalls for
/// `body_stall` (tower-http's body timeout) or misses its deadline at
/// `min_upload_rate`, 413 over `max_body`.
async fn receive(app: &App, headers: &HeaderMap, mut body: axum::body::Body) -> Result<Bytes, Response> {
    use http_body_util::BodyExt;
    let limits = &app.limits;
    // Over-long declared lengths were refused before the route (`refuse_declared_oversize`).
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let expected = declared.unwrap_or(limits.max_body).min(limits.max_body);
    let units = u32::try_from(expected.div_ceil(BUDGET_UNIT).max(1)).unwrap_or(u32::MAX);
    let Ok(_reserved) = app.receiving.try_acquire_many(units) else {
        discard_body(body, limits.max_body).await;
        return Err(busy("too many uploads in progress"));
    };
    let deadline = tokio::time::Instant::now() + limits.body_deadline(expected);
    // Sized from the declared length only: a body without one grows as it arrives.
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limits.max_body));
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(problem(StatusCode::REQUEST_TIMEOUT, format!("the body arrived too slowly: under {} bytes/s", limits.min_upload_rate))),
            Ok(None) => break,
            Ok(Some(Err(e))) if is_stall(&e) => return Err(problem(StatusCode::REQUEST_TIMEOUT, format!("the body stalled for {:?}", limits.body_stall))),
            Ok(Some(Err(e))) => return Err(problem(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > limits.max_body {
                return Err(problem(StatusCode::PAYLOAD_TOO_LARGE, format!("body over the limit of {} bytes", limits.max_body)));
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(bytes))
}

/// Whether a body error is tower-http's stall timeout.
fn is_stall(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Requests whose images total more pixels than this decode in the heavy
/// lane: above a 12-megapixel phone photo with room to spare.
const HEAVY_DECODE: u64 = 16_000_000;

/// The pixels of a request's images (read from their headers; nothing is
/// decoded), or 413 when they total more than the decode budget. Files whose
/// header cannot be read are left to the decoder, which names what is wrong.
fn within_decode_budget(files: &[(String, Bytes)], budget: u64) -> Result<u64, Response> {
    let pixels: u64 = files.iter().filter_map(|(name, b)| dimensions(b, Path::new(name)).ok()).map(|(w, h)| w as u64 * h as u64).sum();
    if pixels > budget {
        return Err(problem(StatusCode::PAYLOAD_TOO_LARGE, format!("the images of this request total {pixels} pixels, over the budget of {budget} per request: send them in several requests")));
    }
    Ok(pixels)
}

/// The file parts of a multipart body (already received whole): (name,
/// bytes), at most `max_files`.
async fn read_multipart(app: &App, request: Request) -> Result<Vec<(String, Bytes)>, Response> {
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
/// it to the route; bodies without a declared length are limited by
/// [`receive`] as they stream. Not tower-http's `RequestBodyLimitLayer`: it
/// answers a plain-text 413 and leaves the body unread, so hyper closes the
/// connection and a client still sending sees a broken pipe, not the answer.
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
