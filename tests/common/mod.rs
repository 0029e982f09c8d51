//! Helpers shared by the integration tests: the real data under ../shared and
//! small hand-made datasets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The real Twitter dataset; tests that need it fail (not skip) without it.
pub fn twitter_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/twitter");
    assert!(p.is_dir(), "the Twitter dataset is expected at {}", p.display());
    p
}

pub fn models_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    assert!(p.is_dir(), "the models are expected at {}", p.display());
    p
}

pub fn imagenet_check_dir() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/imagenet_check");
    assert!(p.is_dir(), "the ImageNet check photos are expected at {}", p.display());
    p
}

/// Writes a small PNG of one colour.
pub fn write_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb)).save(path).unwrap();
}

/// The `deepsent` binary built for these tests.
pub fn deepsent() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_deepsent"))
}

/// CRC-32 (PNG's checksum), for tests that write or edit PNG chunks by hand.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
