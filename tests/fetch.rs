//! `weights fetch`: download with checksum against a server on 127.0.0.1,
//! a corrupt download, and the offline case.

use deepsent::model::fetch::{fetch, sha1_file, FetchError, KnownWeights};
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
    KnownWeights { name: "test", url: "http://127.0.0.1:1/unused", sha1, file: "model.caffemodel", bytes: 0 }
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
