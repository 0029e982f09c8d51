//! Layer probes: which layers are probed, the Gram-matrix route against raw
//! features, C chosen without the test part, features of a real network, and
//! the `probe` command on the real Twitter folds.

mod common;

use deepsent::eval::features::{layer_grams, FeatureOptions};
use deepsent::eval::linear::{fit, CSearch, Classifier};
use deepsent::eval::probe::probe_layer;
use deepsent::model::net::to_f32s;
use deepsent::model::{load, Arch, Net};
use deepsent::preprocess::decode::decode_file;
use deepsent::preprocess::{crops, DEFAULT_MAX_PIXELS};
use nalgebra::DMatrix;

fn arch(name: &str) -> Arch {
    name.parse().unwrap()
}

#[test]
fn caffenet_trunk_is_the_papers_layer_list() {
    let spec = arch("caffenet").spec().unwrap();
    let expected = ["conv1", "pool1", "norm1", "conv2", "pool2", "norm2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8"];
    assert_eq!(spec.trunk_blobs(), expected);
}

#[test]
fn squeezenet_trunk_has_fire_outputs_not_their_branches() {
    let t = arch("squeezenet1.0").spec().unwrap().trunk_blobs();
    for want in ["conv1", "pool1", "fire2/conv1x1_1", "fire2/concat", "pool4", "fire9/concat", "conv_final", "pool_final"] {
        assert!(t.iter().any(|b| b == want), "{want} missing from {t:?}");
    }
    for not in ["fire2/conv1x1_2", "fire2/conv3x3_2", "prob", "data"] {
        assert!(!t.iter().any(|b| b == not), "{not} should not be probed: {t:?}");
    }
    let pos = |b: &str| t.iter().position(|x| x == b).unwrap();
    assert!(pos("conv1") < pos("fire2/concat") && pos("fire2/concat") < pos("pool_final"), "network order: {t:?}");
}

/// n points in d dimensions, labels from a noisy linear rule.
fn synthetic(n: usize, d: usize, seed: u64) -> (DMatrix<f64>, Vec<f64>) {
    let mut state = seed;
    let mut rnd = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / (1u64 << 31) as f64 - 0.5
    };
    let x = DMatrix::from_fn(n, d, |_, _| rnd());
    let y = (0..n).map(|i| if x[(i, 0)] + 0.5 * x[(i, 1)] + 0.2 * rnd() > 0.0 { 1.0 } else { -1.0 }).collect();
    (x, y)
}

#[test]
fn gram_route_gives_the_decisions_of_raw_features() {
    let (x, y) = synthetic(60, 8, 7);
    let gram = &x * x.transpose();
    let train: Vec<usize> = (0..45).collect();
    let test: Vec<usize> = (45..60).collect();
    let y_train: Vec<f64> = train.iter().map(|&i| y[i]).collect();
    for fitted in probe_layer(&gram, &train, &test, &y_train, &[Classifier::Svm, Classifier::Softmax], &CSearch::default()) {
        // The same classifier at the same C on the raw 8-D features.
        let direct = fit(fitted.kind, &x.select_rows(&train), &y_train, fitted.c).decision(&x.select_rows(&test));
        for (a, b) in fitted.decision.iter().zip(direct.iter()) {
            assert!((a - b).abs() < 1e-6 * (1.0 + b.abs()), "{:?}: {a} vs {b}", fitted.kind);
        }
        let acc = fitted.decision.iter().zip(&test).filter(|(d, &i)| *d * y[i] > 0.0).count() as f64 / test.len() as f64;
        assert!(acc >= 0.8, "{:?}: a nearly linear rule is learned, got {acc}", fitted.kind);
    }
}

#[test]
fn c_is_chosen_from_the_training_part_only() {
    let (x, y) = synthetic(80, 6, 3);
    let train: Vec<usize> = (0..60).collect();
    let test: Vec<usize> = (60..80).collect();
    let y_train: Vec<f64> = train.iter().map(|&i| y[i]).collect();
    let kinds = [Classifier::Svm, Classifier::Softmax];
    let a = probe_layer(&(&x * x.transpose()), &train, &test, &y_train, &kinds, &CSearch::default());
    // Replace the test images by anything else: the choice of C cannot move.
    let mut other = x.clone();
    for i in 60..80 {
        for j in 0..6 {
            other[(i, j)] = 10.0 * ((i * 7 + j * 3) % 11) as f64 - 50.0;
        }
    }
    let b = probe_layer(&(&other * other.transpose()), &train, &test, &y_train, &kinds, &CSearch::default());
    for (p, q) in a.iter().zip(&b) {
        assert_eq!(p.c, q.c, "{:?}", p.kind);
        assert_eq!(p.inner_acc, q.inner_acc, "{:?}", p.kind);
        assert_ne!(p.decision, q.decision, "the test rows did change");
    }
}

#[test]
fn layer_grams_equal_the_networks_features_on_real_images() {
    let model = load::load_model(Some(&arch("squeezenet1.0")), &arch("squeezenet1.0").default_weights(&common::models_dir()).unwrap()).unwrap();
    let net = Net::new(model.spec.clone(), &model.weights, &burn::prelude::Device::flex()).unwrap();
    let pre = &model.preprocess;
    let root = common::twitter_root();
    let mut files: Vec<_> = std::fs::read_dir(root.join("images")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let stored: Vec<_> = files[..5].iter().map(|p| pre.resize_image(&decode_file(p, DEFAULT_MAX_PIXELS).unwrap())).collect();
    let images: Vec<_> = stored.iter().collect();
    let blobs = vec!["pool1".to_string(), "fire9/concat".to_string(), "pool_final".to_string()];
    let export = tempfile::tempdir().unwrap();
    // A budget of one byte: every layer in a pass of its own.
    let options = FeatureOptions { batch: 2, memory_bytes: 1, export: Some(export.path()) };
    let grams = layer_grams(&net, pre, &images, &blobs, &options).unwrap();
    let together = layer_grams(&net, pre, &images, &blobs, &FeatureOptions { batch: 5, memory_bytes: 1 << 30, export: None }).unwrap();

    // Direct: the blobs of a plain forward pass, flattened, inner products in f64.
    let c = crops::center(pre.stored_size(), pre.crop);
    let mut data = vec![0.0f32; images.len() * pre.view_len()];
    for (img, view) in images.iter().zip(data.chunks_mut(pre.view_len())) {
        pre.write_view(img, c, view);
    }
    let wanted: Vec<&str> = blobs.iter().map(|s| s.as_str()).collect();
    let out = net.blobs(net.input(data, net.device()), &wanted).unwrap();
    for ((g, t), name) in grams.iter().zip(&together).zip(&blobs) {
        let v = to_f32s(&out[name]);
        let d = v.len() / images.len();
        assert_eq!(g.dims, d, "{name}");
        for i in 0..images.len() {
            for j in 0..images.len() {
                let direct: f64 = (0..d).map(|k| v[i * d + k] as f64 * v[j * d + k] as f64).sum();
                let tol = 1e-4 * direct.abs().max(1.0);
                assert!((g.gram[(i, j)] - direct).abs() < tol, "{name} ({i},{j}): {} vs {direct}", g.gram[(i, j)]);
                assert!((t.gram[(i, j)] - direct).abs() < tol, "{name}, one pass ({i},{j})");
            }
        }
        // The export holds the same features, image by image.
        let bytes = std::fs::read(export.path().join(format!("{}.npy", deepsent::eval::features::file_stem(name)))).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), &[images.len() as u64, d as u64], "{name}");
        assert_eq!(npy.into_vec::<f32>().unwrap(), v, "{name}");
    }
}

/// The command on the real folds: pretrained SqueezeNet, pooled conv10, fold 1.
#[test]
fn probe_command_on_the_real_twitter_fold() {
    let run = tempfile::tempdir().unwrap();
    let root = common::twitter_root();
    let weights = arch("squeezenet1.0").default_weights(&common::models_dir()).unwrap();
    let config = deepsent::eval::crossval::CrossvalConfig {
        backbone: "squeezenet1.0".into(),
        weights: weights.display().to_string(),
        dataset: format!("twitter/five ({})", root.display()),
        recipe: deepsent::train::Recipe::default(),
        folds: vec![1, 2, 3, 4, 5],
        search: vec![],
        holdout: 0.2,
        inner_folds: 0,
    };
    std::fs::write(run.path().join("config.json"), serde_json::to_string(&config).unwrap()).unwrap();
    let probe = || common::deepsent().args(["probe", "--pretrained", "--layers", "pool_final", "--fold", "1", "--root"]).arg(&root).arg("--run").arg(run.path()).output().unwrap();
    let out = probe();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.path().join("probe-pretrained.json")).unwrap()).unwrap();
    assert_eq!(report["pretrained"], true);
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "one layer × two classifiers");
    for l in layers {
        assert_eq!(l["layer"], "pool_final");
        assert_eq!(l["dims"], 1000);
        let fold = &l["folds"][0];
        assert_eq!(fold["fold"], 1);
        // scikit-learn on these features: 0.84 ± 0.01 over folds (notes/peer-results.md).
        let acc = fold["acc"].as_f64().unwrap();
        assert!((0.78..=0.95).contains(&acc), "{}: {acc}", l["classifier"]);
        assert!(fold["C"].as_f64().unwrap() > 0.0);
    }
    for ext in ["md", "png", "svg"] {
        let len = std::fs::metadata(run.path().join(format!("probe-pretrained.{ext}"))).unwrap().len();
        assert!(len > 1000, "probe-pretrained.{ext} is {len} bytes");
    }
    // A second run finds the fold done and does not extract again.
    let again = probe();
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("Gram matrices"), "resumed run extracted features again");
}
