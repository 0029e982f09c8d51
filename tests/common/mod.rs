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

/// A CSV dataset of the first 10 positive and 10 negative real 5-agree
/// Twitter images (`path,label`), written into `dir`.
pub fn tiny_twitter_csv(dir: &Path) -> PathBuf {
    let root = twitter_root();
    let list = std::fs::read_to_string(root.join("ground_truth/twitter_five_agrees.txt")).unwrap();
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for line in list.lines() {
        let mut it = line.split_whitespace();
        let (Some(name), Some(label)) = (it.next(), it.next()) else { continue };
        let bucket = if label == "1" { &mut pos } else { &mut neg };
        if bucket.len() < 10 {
            bucket.push(format!("{},{label}", root.join("images").join(name).display()));
        }
    }
    let csv = dir.join("tiny.csv");
    std::fs::write(&csv, format!("path,label\n{}\n{}\n", pos.join("\n"), neg.join("\n"))).unwrap();
    csv
}

/// A tiny experiment on the 20 images of [`tiny_twitter_csv`]: SqueezeNet,
/// Table 1 `lpft` with `finetune` (more `[finetune]` lines), probes of two
/// layers, the `[[surgery]]` variants `surgery` (TOML), `--quick` keeping
/// folds 1 and 2 and the variant fire9-2. Written as `dir/NAME.toml`.
pub fn tiny_experiment(dir: &Path, name: &str, finetune: &str, surgery: &str) -> PathBuf {
    let csv = tiny_twitter_csv(dir);
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "title = \"{name}\"\nbackbone = \"squeezenet1.0\"\n\n[data]\nroot = \"{}\"\n\n[finetune]\nsurgery = \"lpft\"\nhead_init = \"probe\"\nnew_lr_mult = 1.0\nepochs = 1\nbatch = 8\nmicro_batch = 8\n{finetune}\n\n\
         [probes]\nlayers = [\"fire9/concat\", \"pool_final\"]\ninner_folds = 2\n\n{surgery}\n\n[quick]\nfolds = [1, 2]\nsurgery = [\"fire9-2\"]\n",
        csv.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A tiny study with every kind of job: Table 1 with a 2-point nested
/// search on 2 folds, probes of the pretrained and fine-tuned models, one
/// surgery variant (run with `--quick`: a fraction of an epoch each).
pub fn tiny_study(dir: &Path) -> PathBuf {
    tiny_experiment(dir, "tiny-study", "search = [\"base_lr=1e-5,1e-4\"]", "[[surgery]]\nname = \"fire9-2\"")
}

/// A report's `results.json` without its timings: what must be the same
/// however the study was run.
pub fn report_numbers(report: &Path) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !k.contains("seconds"));
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let path = report.join("results.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap();
    strip(&mut v);
    v
}
