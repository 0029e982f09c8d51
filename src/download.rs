//! Downloading a pinned set of files into a folder: each checked against its
//! SHA-256 before it takes its name (a mismatch leaves nothing behind),
//! those already there with the right checksum skipped (an interrupted fetch
//! resumes), a bounded number in parallel, each retried before it fails the
//! whole fetch with its name. What `deepsent data fetch` and `deepsent
//! weights fetch squeezenet1.0` run.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The environment variable that points fetches at a mirror: its value
/// replaces `https://raw.githubusercontent.com` in every address.
pub const MIRROR_ENV: &str = "DEEPSENT_MIRROR";
const GITHUB_RAW: &str = "https://raw.githubusercontent.com";

/// Where fetched data and models live: `$DEEPSENT_HOME`, else the user's
/// data directory (`~/.local/share/deepsent` on Linux).
pub fn home() -> PathBuf {
    match std::env::var_os("DEEPSENT_HOME").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("deepsent"),
    }
}

/// The address of a file of a GitHub repository at a commit, on GitHub or
/// on the mirror `$DEEPSENT_MIRROR` names (same paths below it).
pub fn github_raw(repo: &str, commit: &str, path: &str) -> String {
    let base = std::env::var(MIRROR_ENV).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| GITHUB_RAW.into());
    format!("{}/{repo}/{commit}/{path}", base.trim_end_matches('/'))
}

/// One file to have: where it goes (relative to the target folder), where
/// it comes from, and what it must be.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub path: String,
    pub url: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{path}: cannot download {url} ({attempts} attempts): {message}")]
    Transfer { path: String, url: String, attempts: usize, message: String },
    #[error("{path}: {url} gave {got_bytes} bytes with SHA-256 {got}, expected {bytes} bytes with {expected}: not the pinned file (nothing kept)")]
    Checksum { path: String, url: String, got: String, got_bytes: u64, expected: String, bytes: u64 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// What a fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    pub downloaded: usize,
    pub already_there: usize,
    pub bytes_downloaded: u64,
}

/// Attempts per file before the fetch fails.
const ATTEMPTS: usize = 3;

/// Brings every file of `files` into `into`, `jobs` downloads at a time.
/// Stops at the first file that cannot be had, and names it.
pub fn fetch_all(files: &[Pinned], into: &Path, label: &str, jobs: usize) -> Result<Fetched, DownloadError> {
    let bar = crate::progress::bar(files.len() as u64, label);
    let next = AtomicUsize::new(0);
    let (downloaded, already, bytes) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicU64::new(0));
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(20)).timeout_read(Duration::from_secs(60)).build();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, files.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::SeqCst) {
                    let Some(file) = files.get(next.fetch_add(1, Ordering::SeqCst)) else { break };
                    match have(&agent, file, into) {
                        Ok(None) => {
                            already.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Some(n)) => {
                            downloaded.fetch_add(1, Ordering::SeqCst);
                            bytes.fetch_add(n, Ordering::SeqCst);
                        }
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            first_error.lock().expect("not poisoned").get_or_insert(e);
                        }
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = first_error.into_inner().expect("not poisoned") {
        return Err(e);
    }
    Ok(Fetched { downloaded: downloaded.into_inner(), already_there: already.into_inner(), bytes_downloaded: bytes.into_inner() })
}

/// Makes sure one file is there: `None` when it already was, else the bytes downloaded.
fn have(agent: &ureq::Agent, file: &Pinned, into: &Path) -> Result<Option<u64>, DownloadError> {
    let target = into.join(&file.path);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DownloadError::Io { path, source }
    };
    if target.metadata().is_ok_and(|m| m.len() == file.bytes) && sha256_file(&target).map_err(io(&target))? == file.sha256 {
        return Ok(None);
    }
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let partial = target.with_file_name(format!("{}.partial", target.file_name().and_then(|n| n.to_str()).unwrap_or("download")));
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            std::thread::sleep(Duration::from_millis(500 * attempt as u64));
        }
        match get(agent, &file.url, &partial, file.bytes) {
            Ok((sha256, got_bytes)) if sha256 == file.sha256 && got_bytes == file.bytes => {
                std::fs::rename(&partial, &target).map_err(io(&target))?;
                return Ok(Some(got_bytes));
            }
            Ok((got, got_bytes)) => {
                let _ = std::fs::remove_file(&partial);
                return Err(DownloadError::Checksum { path: file.path.clone(), url: file.url.clone(), got, got_bytes, expected: file.sha256.clone(), bytes: file.bytes });
            }
            Err(message) => last = message,
        }
    }
    let _ = std::fs::remove_file(&partial);
    Err(DownloadError::Transfer { path: file.path.clone(), url: file.url.clone(), attempts: ATTEMPTS, message: last })
}

/// Streams `url` into `dest` (at most `limit` + 1 bytes: a server sending
/// more is not sending the pinned file); returns its SHA-256 and length.
fn get(agent: &ureq::Agent, url: &str, dest: &Path, limit: u64) -> Result<(String, u64), String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut reader = response.into_reader().take(limit + 1);
    let mut out = std::fs::File::create(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let (mut hash, mut n) = (Sha256::new(), 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = reader.read(&mut buf).map_err(|e| e.to_string())?;
        if k == 0 {
            break;
        }
        hash.update(&buf[..k]);
        out.write_all(&buf[..k]).map_err(|e| format!("{}: {e}", dest.display()))?;
        n += k as u64;
    }
    out.sync_all().map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok((hex::encode(hash.finalize()), n))
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}
