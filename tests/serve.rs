//! `predict` and `serve` on a real SqueezeNet with a 2-output head: a real
//! server on 127.0.0.1, each bad request with its documented status, and the
//! server still answering afterwards.

mod common;

use deepsent::model::saved::{ModelCard, SavedModel};
use deepsent::model::surgery::{parse_ops, Patient};
use deepsent::model::{load, Arch};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// SqueezeNet v1.0 with a new 2-output fc9 (random): a valid sentiment model.
fn sentiment_model(dir: &Path) -> PathBuf {
    let arch: Arch = "squeezenet1.0".parse().unwrap();
    let backbone = load::load_model(Some(&arch), &arch.default_weights(&common::models_dir()).unwrap()).unwrap();
    let p = Patient::new(backbone.spec, backbone.weights).operate(&parse_ops("append:pool_final:fc9:2").unwrap(), 0).unwrap();
    let model = SavedModel {
        spec: p.spec,
        weights: p.weights,
        preprocess: backbone.preprocess,
        card: ModelCard {
            backbone: "squeezenet1.0".into(),
            pretrained_from: "test".into(),
            trained_on: "nothing (random head)".into(),
            surgery: "append:pool_final:fc9:2".into(),
            settings: serde_json::Value::Null,
            cv_accuracy: Some(0.5),
            test_accuracy: None,
            created: "now".into(),
            deepsent_version: "test".into(),
            trained_positive_share: Some(0.7),
            calibration: None,
        },
    };
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    path
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(common::imagenet_check_dir().join(name)).unwrap()
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(model: &Path) -> Server {
        Server::start_with(model, &[])
    }

    fn start_with(model: &Path, flags: &[&str]) -> Server {
        let mut child = common::deepsent()
            .args(["serve", "--addr", "127.0.0.1:0", "--max-body-mb", "1", "--max-files", "4", "--model"])
            .arg(model)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_string();
        Server { child, base }
    }

    /// (status, JSON body) of a POST to /v1/predict.
    fn post(&self, content_type: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let r = ureq::post(&format!("{}/v1/predict?name=x.jpg", self.base)).set("Content-Type", content_type).send_bytes(body);
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "deepsent-test-boundary";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A PNG header announcing 20,000 × 20,000 pixels (400 Mpx), with no real data.
fn bomb_png() -> Vec<u8> {
    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend(kind);
        c.extend(data);
        let crc = common::crc32(&[kind, data].concat());
        c.extend(crc.to_be_bytes());
        c
    }
    let mut ihdr = 20_000u32.to_be_bytes().to_vec();
    ihdr.extend(20_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IEND", b""));
    png
}

#[test]
fn server_answers_good_and_bad_requests_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&sentiment_model(dir.path()));
    let hot_dog = photo("hot_dog.jpg");

    assert_eq!(ureq::get(&format!("{}/healthz", server.base)).call().unwrap().into_string().unwrap(), "ok");
    let info: serde_json::Value = serde_json::from_str(&ureq::get(&format!("{}/v1/model", server.base)).call().unwrap().into_string().unwrap()).unwrap();
    assert_eq!(info["backbone"], "squeezenet1.0");
    assert_eq!(info["cv_accuracy"], 0.5);

    // One good image.
    let (status, body) = server.post("image/jpeg", &hot_dog);
    assert_eq!(status, 200, "{body}");
    let r = &body["results"][0];
    assert_eq!(r["name"], "x.jpg");
    let p = r["positive"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(r["label"], if p > 0.5 { "positive" } else { "negative" });

    // Several files at once, in order.
    let (ct, mp) = multipart(&[("owl.jpg", &photo("owl.jpg")), ("bird.bmp", &photo("bird.bmp"))]);
    let (status, body) = server.post(&ct, &mp);
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["owl.jpg", "bird.bmp"]);

    // Bad requests, each with its status and a JSON error.
    let truncated = &hot_dog[..hot_dog.len() / 3];
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("truncated JPEG", "image/jpeg", truncated.to_vec(), 422),
        ("bytes of no image format", "application/octet-stream", b"not an image at all".to_vec(), 415),
        ("a 20,000 × 20,000 PNG header", "image/png", bomb_png(), 422),
        ("a body over 1 MiB", "image/jpeg", vec![0xff; 1_200_000], 413),
        ("a wrong content type", "text/plain", hot_dog.clone(), 415),
        ("an empty body", "image/jpeg", Vec::new(), 400),
    ];
    for (what, ct, body, want) in cases {
        let (status, answer) = server.post(ct, &body);
        assert_eq!(status, want, "{what}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {answer}");
    }
    let small = photo("owl.jpg");
    let five: Vec<(&str, &[u8])> = (0..5).map(|_| ("owl.jpg", small.as_slice())).collect();
    let (ct, mp) = multipart(&five);
    let (status, answer) = server.post(&ct, &mp);
    assert_eq!(status, 413, "five files with --max-files 4: {answer}");

    // A multipart body whose only part is a text field, not a file: 400, not 415.
    let boundary = "deepsent-test-boundary";
    let text_only = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhello\r\n--{boundary}--\r\n");
    let (status, answer) = server.post(&format!("multipart/form-data; boundary={boundary}"), text_only.as_bytes());
    assert_eq!(status, 400, "a multipart body with no file part: {answer}");
    assert!(answer["error"].as_str().unwrap().contains("comment"), "{answer}");

    // Unknown routes and methods answer JSON that names the routes.
    for (method, path, want) in [("GET", "/v1/nothing", 404), ("GET", "/v1/predict", 405), ("DELETE", "/healthz", 405)] {
        let resp = match ureq::request(method, &format!("{}{path}", server.base)).call() {
            Err(ureq::Error::Status(_, r)) => r,
            other => panic!("{method} {path}: expected an error status, got {other:?}"),
        };
        assert_eq!(resp.status(), want, "{method} {path}");
        let body: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
        assert!(body["error"].as_str().unwrap().contains("POST /v1/predict"), "{method} {path}: {body}");
    }

    // Still serving, with the same answer as before.
    let (status, again) = server.post("image/jpeg", &hot_dog);
    assert_eq!(status, 200);
    assert_eq!(again["results"][0]["positive"], r["positive"]);
}

/// (status, headers of interest, body) of a POST to /v1/explain with `query`.
fn explain(server: &Server, query: &str, content_type: &str, body: &[u8]) -> (u16, Option<String>, String, Vec<u8>) {
    let r = ureq::post(&format!("{}/v1/explain?{query}", server.base)).set("Content-Type", content_type).send_bytes(body);
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let (status, positive, kind) = (resp.status(), resp.header("x-positive").map(str::to_string), resp.content_type().to_string());
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).unwrap();
    (status, positive, kind, bytes)
}

#[test]
fn explain_answers_an_overlay_or_the_map_and_refuses_what_predict_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&sentiment_model(dir.path()));
    let owl = photo("owl.jpg");
    let (_, predicted) = server.post("image/jpeg", &owl);
    let p = predicted["results"][0]["positive"].as_f64().unwrap();

    // The overlay: a PNG of the photo's size plus its caption strip, the score in a header.
    let (status, positive, kind, png) = explain(&server, "name=owl.jpg", "image/jpeg", &owl);
    assert_eq!((status, kind.as_str()), (200, "image/png"), "{}", String::from_utf8_lossy(&png));
    let overlay = image::load_from_memory(&png).unwrap();
    let original = image::load_from_memory(&owl).unwrap();
    assert_eq!(overlay.width(), original.width().min(1024));
    assert!(overlay.height() > original.height().min(1024) * overlay.width() / original.width().max(1));
    assert!((positive.unwrap().parse::<f64>().unwrap() - p).abs() < 1e-5, "the same score as /v1/predict");

    // The map as JSON: size × size values, their mean plus a constant the log-odds.
    let (status, _, kind, body) = explain(&server, "format=json&size=16&oversample=true", "image/jpeg", &owl);
    assert_eq!((status, kind.as_str()), (200, "application/json"), "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((v["method"].as_str(), v["layer"].as_str(), v["size"].as_u64()), (Some("CAM"), Some("conv_final"), Some(16)));
    let rows = v["map"].as_array().unwrap();
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 16));
    assert!(rows.iter().flat_map(|r| r.as_array().unwrap()).any(|x| x.as_f64().unwrap() != 0.0));

    // Bad input: the statuses of /v1/predict, and explain's own.
    let hot_dog = photo("hot_dog.jpg");
    let (ct, two) = multipart(&[("owl.jpg", &owl), ("hot_dog.jpg", &hot_dog)]);
    let cases: Vec<(&str, &str, &str, Vec<u8>, u16)> = vec![
        ("truncated JPEG", "", "image/jpeg", hot_dog[..hot_dog.len() / 3].to_vec(), 422),
        ("a 20,000 × 20,000 PNG header", "", "image/png", bomb_png(), 422),
        ("a body over 1 MiB", "", "image/jpeg", vec![0xff; 1_200_000], 413),
        ("a wrong content type", "", "text/plain", owl.clone(), 415),
        ("an empty body", "", "image/jpeg", Vec::new(), 400),
        ("two images", "", &ct, two.clone(), 400),
        ("an unknown format", "format=gif", "image/jpeg", owl.clone(), 400),
        ("a map too large", "format=json&size=100000", "image/jpeg", owl.clone(), 400),
    ];
    for (what, query, ct, body, want) in cases {
        let (status, _, _, answer) = explain(&server, query, ct, &body);
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_else(|_| panic!("{what}: not JSON"));
        assert_eq!(status, want, "{what}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {answer}");
    }
    // Still explaining.
    assert_eq!(explain(&server, "", "image/jpeg", &owl).0, 200);
}

/// One HTTP/1.1 exchange on an open connection: (status, body). The last two
/// bytes of the request are sent after a pause, as a slow network would: a
/// server that answers before it has read the whole request (a multipart
/// parser stops at the closing boundary, before its final CRLF) would close
/// the connection under the client.
fn exchange(stream: &mut std::net::TcpStream, request: &[u8]) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let (most, last) = request.split_at(request.len().saturating_sub(2));
    stream.write_all(most)?;
    std::thread::sleep(std::time::Duration::from_millis(100));
    stream.write_all(last)?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {status_line:?}")))?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Every answer, good or refused before the body is read (wrong content
/// type, too many files, declared over the limit), leaves the connection
/// usable: the next request on it is answered. hyper closes a connection
/// whose request body was left unread, which a client sees as a broken pipe.
#[test]
fn answers_keep_the_connection_usable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&sentiment_model(dir.path()));
    let host = server.base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let owl = photo("owl.jpg");
    let (multipart_type, five) = multipart(&(0..5).map(|_| ("owl.jpg", owl.as_slice())).collect::<Vec<_>>());
    let oversize = vec![b'x'; 1_200_000];
    let (two_type, two) = multipart(&[("owl.jpg", &owl), ("bird.bmp", &photo("bird.bmp"))]);
    let requests: [(&str, &str, &[u8], u16); 6] = [
        ("two files", &two_type, &two, 200),
        ("one image", "image/jpeg", &owl, 200),
        ("bytes of no image format", "application/octet-stream", b"not an image at all", 415),
        ("a wrong content type", "text/plain", &owl, 415),
        ("five files with --max-files 4", &multipart_type, &five, 413),
        ("a body over 1 MiB", "image/jpeg", &oversize, 413),
    ];
    for (what, content_type, body, want) in requests {
        let mut request = format!("POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        request.extend(body);
        let (status, answer) = exchange(&mut stream, &request).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(status, want, "{what}: {answer}");
        let health = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let (status, answer) = exchange(&mut stream, health.as_bytes()).unwrap_or_else(|e| panic!("the request after {what}: {e}"));
        assert_eq!((status, answer.as_str()), (200, "ok"), "the request after {what}");
    }
}

#[test]
fn server_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&sentiment_model(dir.path()));
    let pid = server.child.id();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let t0 = std::time::Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(t0.elapsed().as_secs() < 20, "the server did not stop after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn predict_reports_bad_files_and_scores_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let model = sentiment_model(dir.path());
    let images = dir.path().join("images");
    std::fs::create_dir_all(images.join("sub")).unwrap();
    std::fs::write(images.join("a.jpg"), photo("hot_dog.jpg")).unwrap();
    std::fs::write(images.join("sub/b.png"), b"corrupt").unwrap();
    std::fs::write(images.join("notes.txt"), b"not an image, skipped in a directory").unwrap();
    // A linked image is predicted like a copy.
    std::os::unix::fs::symlink(images.join("a.jpg"), images.join("linked.jpg")).unwrap();
    let out = common::deepsent().args(["predict", "--oversample", "--format", "json", "--model"]).arg(&model).arg(&images).output().unwrap();
    assert!(!out.status.success(), "a bad file makes the exit status non-zero");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    let linked = rows.iter().find(|r| r["path"].as_str().unwrap().ends_with("linked.jpg")).expect("the linked image");
    assert!(linked["positive"].as_f64().is_some(), "{linked}");
    // A folder without images is an error, not an empty success.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), b"no image here").unwrap();
    let out = common::deepsent().args(["predict", "--model"]).arg(&model).arg(&empty).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no images"), "{}", String::from_utf8_lossy(&out.stderr));
    let good = rows.iter().find(|r| r["path"].as_str().unwrap().ends_with("a.jpg")).unwrap();
    assert!(good["positive"].as_f64().is_some() && good["positive_10crop"].as_f64().is_some(), "{good}");
    let bad = rows.iter().find(|r| r["path"].as_str().unwrap().ends_with("b.png")).unwrap();
    assert!(bad["error"].as_str().unwrap().contains("b.png"), "{bad}");
    // The model card.
    let info = common::deepsent().args(["model", "info"]).arg(&model).output().unwrap();
    assert!(info.status.success());
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("squeezenet1.0") && text.contains("50.0 %"), "{text}");
}

/// Sends a request head announcing a 100-byte JPEG body, then one byte of it.
fn stalled_upload(host: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.write_all(format!("POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\nContent-Length: 100\r\n\r\nx").as_bytes()).unwrap();
    stream
}

/// What a connection receives until the server closes it or `wait` passes:
/// (the bytes, seconds until then).
fn read_until_closed(stream: &mut std::net::TcpStream, wait: f64) -> (String, f64) {
    use std::io::Read;
    stream.set_read_timeout(Some(std::time::Duration::from_secs_f64(wait))).unwrap();
    let t0 = std::time::Instant::now();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed().as_secs_f64())
}

/// Slow and silent clients cannot hold the service: 64 stalled uploads (as
/// many as `--max-in-flight`) leave ordinary requests answered; a stalled
/// body gets 408 and a silent connection is closed, each after its timeout;
/// a request whose images together exceed the decode budget gets 413.
#[test]
fn slow_clients_time_out_and_do_not_starve_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let owl = photo("owl.jpg");
    let (w, h) = image::load_from_memory(&owl).unwrap().to_rgb8().dimensions();
    let budget = (w * h * 3 / 2).to_string();
    let server = Server::start_with(&sentiment_model(dir.path()), &["--header-timeout-s", "2", "--body-stall-s", "3", "--decode-budget", &budget]);
    let host = server.base.strip_prefix("http://").unwrap().to_string();

    let mut slow: Vec<_> = (0..64).map(|_| stalled_upload(&host)).collect();
    let mut silent = std::net::TcpStream::connect(&host).unwrap();
    for i in 0..3 {
        let t0 = std::time::Instant::now();
        let (status, answer) = server.post("image/jpeg", &owl);
        assert_eq!(status, 200, "request {i} beside 64 stalled uploads: {answer}");
        assert!(t0.elapsed().as_secs_f64() < 2.0, "request {i} took {:?}", t0.elapsed());
    }
    let (answer, seconds) = read_until_closed(&mut slow[0], 20.0);
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("stalled"), "a stalled body: {answer:?}");
    assert!((2.0..10.0).contains(&seconds), "a stalled body answered after {seconds} s (--body-stall-s 3)");
    let (answer, seconds) = read_until_closed(&mut silent, 20.0);
    assert!(answer.is_empty() && seconds < 10.0, "a silent connection: {answer:?} after {seconds} s (--header-timeout-s 2)");

    let (ct, two) = multipart(&[("owl.jpg", &owl), ("owl2.jpg", &owl)]);
    let (status, answer) = server.post(&ct, &two);
    assert_eq!(status, 413, "two images over the decode budget: {answer}");
    assert!(answer["error"].as_str().unwrap().contains("budget"), "{answer}");
    let (status, _) = server.post("image/jpeg", &owl);
    assert_eq!(status, 200, "one image within the budget");
}

/// SIGTERM ends the service within its grace period even while an upload
/// is stalled (the stall timeout alone would take a minute).
#[test]
fn sigterm_with_a_stalled_upload_exits_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(&sentiment_model(dir.path()), &["--body-stall-s", "60", "--grace-s", "2"]);
    let host = server.base.strip_prefix("http://").unwrap().to_string();
    let _stalled = stalled_upload(&host);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap().success());
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(t0.elapsed().as_secs() < 15, "the server did not stop within 15 s of SIGTERM (grace 2 s)");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
}

/// Finite weights that overflow (conv1 weights of ±1e37) make `predict`
/// fail and name the layer, instead of printing NaN or "negative 0.500".
#[test]
fn outputs_that_are_not_numbers_are_an_error_naming_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let path = sentiment_model(dir.path());
    let mut model = SavedModel::load(&path).unwrap();
    for w in &mut model.weights.layers.get_mut("conv1").unwrap()[0].data {
        *w = w.signum() * 1e37;
    }
    model.save(&path).unwrap();
    let out = common::deepsent().args(["predict", "--model"]).arg(&path).arg(common::imagenet_check_dir().join("owl.jpg")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err} {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("layer conv1 outputs NaN or infinity"), "{err}");
    assert!(out.stdout.is_empty(), "no answer is printed: {}", String::from_utf8_lossy(&out.stdout));
}

/// `evaluate` on a folder dataset: its metrics.json scores each image as
/// `predict` does, and its accuracy is the share of those answers that match
/// the folder's label.
#[test]
fn evaluate_scores_like_predict_and_writes_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let model = sentiment_model(dir.path());
    let data = dir.path().join("data");
    let photos = ["owl.jpg", "hot_dog.jpg", "bird.bmp", "parrot.jpg"];
    for (i, name) in photos.iter().enumerate() {
        let class = if i % 2 == 0 { "positive" } else { "negative" };
        std::fs::create_dir_all(data.join(class)).unwrap();
        std::fs::write(data.join(class).join(name), photo(name)).unwrap();
    }
    let out = dir.path().join("eval");
    let run = common::deepsent().args(["evaluate", "--model"]).arg(&model).arg("--root").arg(&data).arg("--out").arg(&out).env("DEEPSENT_PROGRESS_SECS", "0").output().unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    // Not a terminal: the progress bar comes as plain lines.
    assert!(log.lines().any(|l| l.starts_with("evaluating") && l.contains("/4")), "{log}");
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let images = metrics["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    let predict = common::deepsent().args(["predict", "--format", "json", "--model"]).arg(&model).arg(&data).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
    let mut right = 0;
    for row in rows["results"].as_array().unwrap() {
        let path = row["path"].as_str().unwrap();
        let scored = images.iter().find(|i| path.ends_with(i["name"].as_str().unwrap())).unwrap_or_else(|| panic!("{path} not evaluated"));
        assert!((scored["positive"].as_f64().unwrap() - row["positive"].as_f64().unwrap()).abs() < 1e-6, "{path}");
        right += usize::from((row["label"] == "positive") == path.contains("/positive/"));
    }
    assert_eq!(metrics["center"]["accuracy"].as_f64().unwrap(), right as f64 / 4.0);
    for key in ["balanced_accuracy", "roc_auc", "pr_auc", "log_loss", "brier", "ece"] {
        assert!(metrics["center"][key].is_number(), "{key}: {}", metrics["center"]);
        assert!(metrics["center"]["interval"][key]["low"].is_number() || key == "roc_auc", "{key} interval");
    }
    assert!(std::fs::read_to_string(out.join("metrics.md")).unwrap().contains("| balanced_accuracy |"));
}

/// A label file whose names hold spaces and reuse a file name in two
/// folders: `evaluate` finds every image, writes its plots, and `predict
/// --truth` with the same file reports the same accuracy; a bare name that
/// fits two images is an error listing both, in either command.
#[test]
fn evaluate_and_predict_truth_read_label_files_alike() {
    let dir = tempfile::tempdir().unwrap();
    let model = sentiment_model(dir.path());
    let data = dir.path().join("mine");
    let files = [("joy/1.jpg", "owl.jpg", 1), ("fear/1.jpg", "hot_dog.jpg", 0), ("Acorns 1.jpg", "parrot.jpg", 1), ("deep/er/bird one.bmp", "bird.bmp", 0)];
    let mut labels = String::new();
    for (name, photo_name, label) in files {
        let path = data.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, photo(photo_name)).unwrap();
        labels += &format!("{name} {label}\n");
    }
    let label_file = data.join("labels.txt");
    std::fs::write(&label_file, &labels).unwrap();
    let out = dir.path().join("eval");
    let run = common::deepsent().args(["evaluate", "--model"]).arg(&model).arg("--root").arg(&label_file).arg("--out").arg(&out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let names: Vec<&str> = metrics["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for stem in ["roc", "pr", "reliability"] {
        for ext in ["png", "svg"] {
            let file = out.join(format!("{stem}.{ext}"));
            assert!(std::fs::metadata(&file).map(|m| m.len() > 1000).unwrap_or(false), "{}", file.display());
        }
    }
    let predict = common::deepsent().args(["predict", "--model"]).arg(&model).arg("--truth").arg(&label_file).arg(&data).output().unwrap();
    let log = String::from_utf8_lossy(&predict.stderr);
    assert!(predict.status.success(), "{log}");
    let accuracy = metrics["center"]["accuracy"].as_f64().unwrap();
    assert!(log.contains(&format!("on the 4 predicted images listed in {} (4 listed): {accuracy:.4}", label_file.display())), "{log} vs {accuracy}");

    std::fs::write(&label_file, "1.jpg 1\n").unwrap();
    for args in [vec!["evaluate", "--root", label_file.to_str().unwrap()], vec!["predict", "--truth", label_file.to_str().unwrap(), data.to_str().unwrap()]] {
        let run = common::deepsent().args(&args).arg("--model").arg(&model).output().unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?}");
        assert!(err.contains("labels.txt:1: \"1.jpg\" is ambiguous") && err.contains("joy/1.jpg") && err.contains("fear/1.jpg"), "{args:?}: {err}");
    }
}

/// `evaluate --calibrate` fits on one labelled set and reports on another:
/// the two may not share an image; the calibrated model it writes is what
/// `predict` then runs (its scores and answers are the calibrated ones), and
/// `evaluate` of that model measures what `--calibrate` reported.
#[test]
fn calibration_is_fitted_on_disjoint_images_and_carried_by_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = sentiment_model(dir.path());
    let set = |name: &str, photos: &[(&str, u8)]| {
        let csv = dir.path().join(format!("{name}.csv"));
        let mut text = String::from("path,label\n");
        for (photo_name, label) in photos {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join(photo_name), photo(photo_name)).unwrap();
            text += &format!("{name}/{photo_name},{label}\n");
        }
        std::fs::write(&csv, text).unwrap();
        csv
    };
    let calib = set("calib", &[("owl.jpg", 1), ("hot_dog.jpg", 0), ("bird.bmp", 1), ("dragonfly.bmp", 0)]);
    let eval = set("eval", &[("parrot.jpg", 1), ("sunflower.bmp", 0), ("grace_hopper.bmp", 1)]);
    let calibrated = dir.path().join("calibrated.safetensors");
    let out = dir.path().join("out");
    let run = common::deepsent().args(["evaluate", "--model"]).arg(&model).arg("--root").arg(&eval).arg("--calibrate").arg(&calib).arg("--write-model").arg(&calibrated).arg("--out").arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("What the calibration changed") && stdout.contains("| balanced_accuracy | centre crop |"), "{stdout}");
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let cal = &metrics["calibration"];
    assert!(cal["temperature"].as_f64().unwrap() > 0.0 && cal["fitted"].as_str().unwrap().contains("calib.csv (4 images, centre crop)"), "{cal}");

    // The calibrated model: predict answers with the calibrated scores and threshold.
    let predict = common::deepsent().args(["predict", "--format", "json", "--model"]).arg(&calibrated).arg(dir.path().join("eval")).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&predict.stdout).unwrap();
    let threshold = cal["threshold"].as_f64().unwrap();
    for row in rows["results"].as_array().unwrap() {
        let path = row["path"].as_str().unwrap();
        let scored = metrics["images"].as_array().unwrap().iter().find(|i| path.ends_with(i["name"].as_str().unwrap())).unwrap();
        let p = row["positive"].as_f64().unwrap();
        assert!((scored["positive"].as_f64().unwrap() - p).abs() < 1e-5, "{path}: {scored} vs {row}");
        assert_eq!(row["label"] == "positive", p > threshold, "{path}");
    }
    // Evaluating the calibrated model measures what the calibration run reported.
    let again = common::deepsent().args(["evaluate", "--model"]).arg(&calibrated).arg("--root").arg(&eval).arg("--out").arg(dir.path().join("again")).output().unwrap();
    assert!(again.status.success());
    let second: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("again").join("metrics.json")).unwrap()).unwrap();
    assert_eq!(second["center"]["balanced_accuracy"], metrics["center"]["balanced_accuracy"]);

    // A prior correction from the card's training share (0.7) to 0.35: the log-odds shift by hand.
    let run = common::deepsent().args(["evaluate", "--model"]).arg(&model).arg("--root").arg(&eval).arg("--prior").arg("0.35").arg("--write-model").arg(dir.path().join("prior.safetensors")).arg("--out").arg(dir.path().join("prior")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let prior: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("prior").join("metrics.json")).unwrap()).unwrap();
    let shift = prior["calibration"]["shift"].as_f64().unwrap();
    assert!((shift - ((0.35f64 / 0.65).ln() - (0.7f64 / 0.3).ln())).abs() < 1e-9, "{shift}");
    assert_eq!((prior["calibration"]["temperature"].as_f64(), prior["calibration"]["threshold"].as_f64()), (Some(1.0), Some(0.5)));

    // Overlapping sets are refused, naming the shared image.
    let overlap = set("calib2", &[("parrot.jpg", 1), ("owl.jpg", 0)]);
    std::fs::write(&overlap, "path,label\neval/parrot.jpg,1\ncalib/owl.jpg,1\n").unwrap();
    let run = common::deepsent().args(["evaluate", "--model"]).arg(&model).arg("--root").arg(&eval).arg("--calibrate").arg(&overlap).arg("--write-model").arg(dir.path().join("x.safetensors")).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && err.contains("share 1 image(s) (eval/parrot.jpg)"), "{err}");
    assert!(!dir.path().join("x.safetensors").exists());
}
