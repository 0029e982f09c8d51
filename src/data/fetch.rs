//! The Twitter dataset from its public homes, pinned by commit and by the
//! SHA-256 of every file: `deepsent data fetch twitter`.
//!
//! | what | repository | commit |
//! |---|---|---|
//! | `images/`, `ground_truth/twitter_{five,four,three}_agrees.txt` | johnwsh/twitterDataset | 4604b72f |
//! | the authors' folds `ground_truth/{five,four,three}_agrees/test{K}/{train,test}.txt`, written as `folds/{five,four,three}_agree/fold{K}/…` | imatge-upc/sentiment-2017-imavis | b8692194 |
//!
//! `twitter_files.txt` lists each file as deepsent lays it out, with its
//! SHA-256 and size (computed on the copy the project was developed with,
//! byte-identical to upstream).

use crate::download::{fetch_all, github_raw, Fetched, Pinned};
use std::path::Path;

const IMAGES_REPO: &str = "johnwsh/twitterDataset";
const IMAGES_COMMIT: &str = "4604b72f99303fc8e814de37dc90f17fe39aa5bb";
const FOLDS_REPO: &str = "imatge-upc/sentiment-2017-imavis";
const FOLDS_COMMIT: &str = "b869219424a2672873916f4cc0b2995d78660c12";

/// `SHA-256 SIZE PATH` per line, PATH in deepsent's layout.
const MANIFEST: &str = include_str!("twitter_files.txt");

/// Simultaneous downloads: enough to hide the latency of 1,300 small files,
/// few enough to be a polite client.
const JOBS: usize = 8;

/// Every file of the dataset, with its upstream address.
pub fn twitter_files() -> Vec<Pinned> {
    MANIFEST
        .lines()
        .map(|line| {
            let mut fields = line.split(' ');
            let (sha256, bytes, path) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            Pinned { url: upstream(path), path: path.to_string(), sha256: sha256.to_string(), bytes: bytes.parse().expect("the manifest's sizes are numbers") }
        })
        .collect()
}

/// Where a file of deepsent's layout comes from.
fn upstream(path: &str) -> String {
    match path.strip_prefix("folds/") {
        // folds/five_agree/fold1/test.txt ← ground_truth/five_agrees/test1/test.txt
        Some(rest) => {
            let mut parts = rest.splitn(3, '/');
            let (subset, fold, file) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let k = fold.trim_start_matches("fold");
            github_raw(FOLDS_REPO, FOLDS_COMMIT, &format!("ground_truth/{subset}s/test{k}/{file}"))
        }
        None => github_raw(IMAGES_REPO, IMAGES_COMMIT, path),
    }
}

/// Total size of the dataset in bytes.
pub fn twitter_bytes() -> u64 {
    twitter_files().iter().map(|f| f.bytes).sum()
}

/// Fetches the Twitter dataset into `into` (the layout `data check` reads).
pub fn fetch_twitter(into: &Path) -> Result<Fetched, crate::download::DownloadError> {
    fetch_all(&twitter_files(), into, "fetching twitter", JOBS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_has_every_file_of_the_layout_once() {
        let files = twitter_files();
        assert_eq!(files.iter().filter(|f| f.path.starts_with("images/")).count(), 1269);
        assert_eq!(files.iter().filter(|f| f.path.starts_with("ground_truth/")).count(), 3);
        assert_eq!(files.iter().filter(|f| f.path.starts_with("folds/")).count(), 30);
        let mut paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        paths.dedup();
        assert_eq!(paths.len(), files.len());
        assert!(files.iter().all(|f| f.sha256.len() == 64 && f.bytes > 0));
        let fold = files.iter().find(|f| f.path == "folds/four_agree/fold3/train.txt").unwrap();
        assert!(fold.url.ends_with("/imatge-upc/sentiment-2017-imavis/b869219424a2672873916f4cc0b2995d78660c12/ground_truth/four_agrees/test3/train.txt"), "{}", fold.url);
        let labels = files.iter().find(|f| f.path == "ground_truth/twitter_five_agrees.txt").unwrap();
        assert!(labels.url.ends_with("/johnwsh/twitterDataset/4604b72f99303fc8e814de37dc90f17fe39aa5bb/ground_truth/twitter_five_agrees.txt"), "{}", labels.url);
    }
}
