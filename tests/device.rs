//! `--device`: the networks give the same answers wherever they run.
//!
//! On a GPU the layers run burn's own operations, not deepsent's CPU
//! kernels; `DEEPSENT_KERNELS=burn` runs that same path on the CPU, so it is
//! checked here on every machine (inference on the ImageNet check photos,
//! and training steps). Where this build has a GPU backend (`--features
//! cuda` / `wgpu`) and a device of it opens, its answers are compared with
//! the CPU's; where none opens the test says so.

mod common;

use std::path::Path;

/// Top-5 (class, probability) per ImageNet check photo from `deepsent classify`.
fn classify(device: &str, burn_operations: bool) -> Result<Vec<Vec<(u64, f64)>>, String> {
    let photos: Vec<_> = std::fs::read_dir(common::imagenet_check_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e != "md")).collect();
    let mut cmd = common::deepsent();
    cmd.args(["classify", "--arch", "squeezenet1.0", "--json", "--device", device]).arg("--models").arg(common::models_dir()).args(&photos);
    if burn_operations {
        cmd.env("DEEPSENT_KERNELS", "burn");
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(v.as_array().unwrap().iter().map(|r| r["top"].as_array().unwrap().iter().map(|c| (c["index"].as_u64().unwrap(), c["prob"].as_f64().unwrap())).collect()).collect())
}

fn assert_close(a: &[Vec<(u64, f64)>], b: &[Vec<(u64, f64)>], tolerance: f64, what: &str) {
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x[0].0, y[0].0, "{what}: another top class");
        for ((cx, px), (cy, py)) in x.iter().zip(y) {
            if cx == cy {
                assert!((px - py).abs() <= tolerance, "{what}: class {cx}: {px} vs {py}");
            }
        }
    }
}

#[test]
fn the_operations_a_gpu_runs_give_the_cpu_kernels_answers() {
    let kernels = classify("cpu", false).unwrap();
    let burn = classify("cpu", true).unwrap();
    assert_close(&kernels, &burn, 1e-4, "burn's operations on the CPU");
}

/// The training losses of a short fine-tuning (every layer of fire9 and the
/// head trained) on 20 real images.
fn train_losses(dir: &Path, name: &str, burn_operations: bool) -> Vec<f64> {
    let csv = common::tiny_twitter_csv(dir);
    let out = dir.join(format!("{name}.safetensors"));
    let mut cmd = common::deepsent();
    cmd.args(["finetune", "--arch", "squeezenet1.0", "--surgery", "lpft", "--epochs", "2", "--batch", "8", "--micro-batch", "8", "--base-lr", "1e-3", "--device", "cpu"])
        .arg("--models")
        .arg(common::models_dir())
        .arg("--root")
        .arg(&csv)
        .arg("--out")
        .arg(&out);
    if burn_operations {
        cmd.env("DEEPSENT_KERNELS", "burn");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(out.with_extension("run").join("log.jsonl")).unwrap();
    log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap()).collect()
}

#[test]
fn training_with_the_operations_a_gpu_runs_matches_the_cpu_kernels() {
    let dir = tempfile::tempdir().unwrap();
    let kernels = train_losses(dir.path(), "kernels", false);
    let burn = train_losses(dir.path(), "burn", true);
    assert_eq!(kernels.len(), 2, "{kernels:?}");
    // The second epoch's loss follows the first epoch's SGD updates.
    for (k, b) in kernels.iter().zip(&burn) {
        assert!((k - b).abs() <= 1e-3 * k.abs().max(1e-3), "losses {kernels:?} vs {burn:?}");
    }
    assert_ne!(kernels[0], kernels[1], "training did not move: the test would show nothing");
}

#[test]
fn a_device_this_build_lacks_is_a_clear_error() {
    for (device, feature) in [("cuda", "cuda"), ("wgpu", "wgpu")] {
        let compiled = if feature == "cuda" { cfg!(feature = "cuda") } else { cfg!(feature = "wgpu") };
        if compiled {
            continue;
        }
        let err = classify(device, false).unwrap_err();
        assert!(err.contains(&format!("--features {feature}")), "{err}");
    }
    let mut cmd = common::deepsent();
    let out = cmd.args(["classify", "--device", "tpu", "x.jpg"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cpu, cuda, cuda:N or wgpu"));
    // $DEEPSENT_DEVICE is read when --device is not given.
    let out = common::deepsent().args(["classify", "x.jpg"]).env("DEEPSENT_DEVICE", "tpu").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("$DEEPSENT_DEVICE"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_gpu_device_this_build_has_matches_the_cpu() {
    let compiled: Vec<&str> = [(cfg!(feature = "cuda"), "cuda"), (cfg!(feature = "wgpu"), "wgpu")].into_iter().filter(|(c, _)| *c).map(|(_, d)| d).collect();
    if compiled.is_empty() {
        eprintln!("skipped: this build has no GPU backend (cargo test --features cuda or wgpu)");
        return;
    }
    let cpu = classify("cpu", false).unwrap();
    for device in compiled {
        match classify(device, false) {
            Ok(gpu) => assert_close(&cpu, &gpu, 1e-3, device),
            Err(e) => eprintln!("skipped {device}: no device opened here ({})", e.lines().last().unwrap_or_default()),
        }
    }
}
