//! Downloading known pretrained weights into a cache, with their SHA-1
//! checked: `deepsent weights fetch caffenet`.

use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A weights file that can be downloaded.
#[derive(Debug, Clone)]
pub struct KnownWeights {
    pub name: &'static str,
    pub url: &'static str,
    pub sha1: &'static str,
    pub file: &'static str,
    pub bytes: u64,
}

/// The model zoo's BVLC reference CaffeNet (the paper's starting point).
pub const CAFFENET: KnownWeights = KnownWeights {
    name: "caffenet",
    url: "http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel",
    sha1: "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
    file: "bvlc_reference_caffenet.caffemodel",
    bytes: 243_862_414,
};

pub const KNOWN: [KnownWeights; 1] = [CAFFENET];

pub fn known(name: &str) -> Option<&'static KnownWeights> {
    KNOWN.iter().find(|k| k.name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot download {url}: {message}\n(no internet here? download it elsewhere, check its SHA-1 is {sha1}, and put it at {target} or pass --weights FILE)")]
    Download { url: String, message: String, sha1: String, target: PathBuf },
    #[error("{url}: SHA-1 is {got}, expected {expected}: the download is corrupt or not the expected file (deleted)")]
    Checksum { url: String, got: String, expected: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where downloads are kept: `$DEEPSENT_HOME`, else the user's cache directory.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("DEEPSENT_HOME").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("deepsent"),
    }
}

/// SHA-1 of a file, as lowercase hex.
pub fn sha1_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Returns the cached file, downloading it first if it is missing or its
/// checksum is wrong. `url` overrides the known address (a mirror).
fn io(path: &Path) -> impl Fn(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io { path: path.to_path_buf(), source }
}

pub fn fetch(w: &KnownWeights, dir: &Path, url: Option<&str>) -> Result<PathBuf, FetchError> {
    let target = dir.join(w.file);
    if target.exists() && sha1_file(&target).map_err(io(&target))? == w.sha1 {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let url = url.unwrap_or(w.url);
    let download_err = |message: String| FetchError::Download { url: url.into(), message, sha1: w.sha1.into(), target: target.clone() };
    let response = ureq::get(url).call().map_err(|e| download_err(e.to_string()))?;
    let len = response.header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(w.bytes);
    let partial = target.with_extension("partial");
    let mut out = std::fs::File::create(&partial).map_err(io(&partial))?;
    let mut reader = response.into_reader();
    let mut hasher = Sha1::new();
    let bar = crate::progress::bar(len, &format!("fetching {}", w.name));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| download_err(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io(&partial))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    drop(out);
    let got = hex::encode(hasher.finalize());
    if got != w.sha1 {
        let _ = std::fs::remove_file(&partial);
        return Err(FetchError::Checksum { url: url.into(), got, expected: w.sha1.into() });
    }
    std::fs::rename(&partial, &target).map_err(io(&target))?;
    Ok(target)
}
