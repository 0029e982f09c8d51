//! Where data and models are found: a flag first, then an environment
//! variable, then the development layout (`../shared/…` beside the
//! repository, where its CI and developers keep them), then the deepsent
//! home, where `deepsent data fetch` and `deepsent weights fetch` put them.
//!
//! Not clap's `env` attribute: experiment files and the library resolve
//! paths the same way with no command line, so the rule is written once,
//! here, for both.

use std::path::{Path, PathBuf};

pub const DATA_ENV: &str = "DEEPSENT_DATA";
pub const MODELS_ENV: &str = "DEEPSENT_MODELS";
/// Where `deepsent data fetch twitter` and `deepsent weights fetch
/// squeezenet1.0` put their files, below the deepsent home.
pub const TWITTER_IN_HOME: &str = "data/twitter";
pub const MODELS_IN_HOME: &str = "models";

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error(
        "no {what} found: run `{fetch}` (it goes to the deepsent home, $DEEPSENT_HOME), \
         or pass {flag} DIR, or set {env}=DIR (looked in: {looked}). {hint}"
    )]
    NotFound { what: &'static str, flag: &'static str, env: &'static str, fetch: &'static str, looked: String, hint: &'static str },
    #[error("{what} {path} (from {source_of_path}) does not exist")]
    Missing { what: &'static str, path: PathBuf, source_of_path: String },
}

/// Candidates for a development path such as `../shared/data/twitter`:
/// relative to the working directory and to this crate's source tree.
fn dev_candidates(dev: &str) -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![PathBuf::from(dev), manifest.join(dev)]
}

/// What is looked for, and how to get it.
struct Wanted {
    what: &'static str,
    flag: &'static str,
    env: &'static str,
    /// The development layout's path.
    dev: &'static str,
    /// Its place in the deepsent home.
    home: &'static str,
    /// The command that fetches it there.
    fetch: &'static str,
    hint: &'static str,
}

fn locate(flag_value: Option<&Path>, w: Wanted) -> Result<PathBuf, LocateError> {
    let Wanted { what, flag, env, dev, home, fetch, hint } = w;
    if let Some(p) = flag_value {
        return existing(p.to_path_buf(), what, format!("{flag}"));
    }
    if let Some(p) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return existing(PathBuf::from(p), what, format!("${env}"));
    }
    let mut candidates = dev_candidates(dev);
    candidates.push(crate::download::home().join(home));
    if let Some(found) = candidates.iter().find(|p| p.exists()) {
        return Ok(found.clone());
    }
    Err(LocateError::NotFound {
        what,
        flag,
        env,
        fetch,
        looked: candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        hint,
    })
}

fn existing(p: PathBuf, what: &'static str, source_of_path: String) -> Result<PathBuf, LocateError> {
    if p.exists() {
        Ok(p)
    } else {
        Err(LocateError::Missing { what, path: p, source_of_path })
    }
}

/// The dataset root (the Twitter dataset by default).
pub fn data_root(flag: Option<&Path>) -> Result<PathBuf, LocateError> {
    locate(
        flag,
        Wanted {
            what: "dataset",
            flag: "--root",
            env: DATA_ENV,
            dev: "../shared/data/twitter",
            home: TWITTER_IN_HOME,
            fetch: "deepsent data fetch twitter",
            hint: "The Twitter dataset of You et al. (AAAI 2015) is the default; any folder of \
                   positive/ and negative/ images or a CSV of path,label works too.",
        },
    )
}

/// The directory of pretrained models.
pub fn models_dir(flag: Option<&Path>) -> Result<PathBuf, LocateError> {
    locate(
        flag,
        Wanted {
            what: "models directory",
            flag: "--models",
            env: MODELS_ENV,
            dev: "../shared/models",
            home: MODELS_IN_HOME,
            fetch: "deepsent weights fetch squeezenet1.0",
            hint: "It holds squeezenet_v1.0/ (SqueezeNet_deploy.prototxt, compressed_SqueezeNet.net); \
                   `deepsent weights fetch` gets the other models.",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_env_and_missing_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(data_root(Some(dir.path())).unwrap(), dir.path());
        let err = data_root(Some(&dir.path().join("nope"))).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("--root"), "{err}");
    }
}
