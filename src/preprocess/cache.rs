//! Decode and warp each image once per run: an in-memory cache of the stored
//! (256×256×3 byte) images, filled in parallel with a progress bar.

use super::decode::{decode_file, DecodeError};
use super::settings::Preprocess;
use crate::progress;
use image::RgbImage;
use rayon::prelude::*;
use std::path::PathBuf;

/// Stored images, in the order of the paths they were made from.
pub struct ImageCache {
    pub images: Vec<RgbImage>,
}

/// Every image that failed, so a user sees all of them at once.
#[derive(Debug, thiserror::Error)]
#[error("{} image(s) could not be read:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
pub struct CacheError(pub Vec<DecodeError>);

impl ImageCache {
    /// Decodes and resizes every path; fails (naming every bad file) if any
    /// image cannot be read, so no run ever trains on a silently shorter set.
    pub fn build(paths: &[PathBuf], pre: &Preprocess, max_pixels: u64) -> Result<ImageCache, CacheError> {
        let bar = progress::bar(paths.len() as u64, "decoding images");
        let results: Vec<Result<RgbImage, DecodeError>> = paths
            .par_iter()
            .map(|p| {
                let r = decode_file(p, max_pixels).map(|img| pre.resize_image(&img));
                bar.inc(1);
                r
            })
            .collect();
        bar.finish_and_clear();
        let (ok, errors): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
        if !errors.is_empty() {
            return Err(CacheError(errors.into_iter().map(|e| e.unwrap_err()).collect()));
        }
        Ok(ImageCache { images: ok.into_iter().map(Result::unwrap).collect() })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}
