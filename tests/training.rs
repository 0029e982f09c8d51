//! The solver against a hand-computed Caffe SGD step, bit-identical resume,
//! and fine-tuning CaffeNet from a caffemodel on real images.

mod common;

use burn::prelude::*;
use deepsent::data::{self, DataRequest, FoldSource, Subset};
use deepsent::model::caffe::{caffemodel, prototxt};
use deepsent::model::net::to_f32s;
use deepsent::model::surgery::{parse_ops, Patient};
use deepsent::model::{Arch, Blob, Net, Weights};
use deepsent::preprocess::{ImageCache, Preprocess, Resize};
use deepsent::train::solver::{Augment, DecayTarget, Schedule, Sgd, SolverSettings};
use deepsent::train::TrainDir;
use deepsent::train::{fit, FitConfig};

fn t1(v: &[f32]) -> Tensor<1> {
    Tensor::from_data(burn::tensor::TensorData::new(v.to_vec(), [v.len()]), &Device::flex())
}

#[test]
fn sgd_step_equals_caffe_by_hand() {
    let text = r#"input: "data" input_dim: 1 input_dim: 2 input_dim: 1 input_dim: 1
        layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
                param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
                inner_product_param { num_output: 1 } }"#;
    let spec = prototxt::parse(text, "t").unwrap();
    let mut w = Weights::default();
    w.layers.insert("fc".into(), vec![Blob::new(vec![1, 2], vec![1.0, -2.0]), Blob::new(vec![1], vec![0.5])]);
    let net = Net::new(spec.clone(), &w, &Device::flex()).unwrap();
    let mut params = net.params.clone();
    let s = SolverSettings { weight_decay: 0.1, momentum: 0.9, ..Default::default() };
    let mut sgd = Sgd::new(&params);
    let grads = vec![vec![Some(t1(&[0.2, 0.4])), Some(t1(&[1.0]))]];
    let lr = 0.5;
    sgd.step(&spec, &mut params, &grads, lr, &s);
    // weights: h = 0.5·1·(g + 0.1·w) = 0.5·(0.2+0.1, 0.4−0.2) = (0.15, 0.1); w = (0.85, −2.1)
    // bias:    h = 0.5·2·(1 + 0·0.5) = 1; b = −0.5
    let close = |a: Vec<f32>, b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    assert!(close(to_f32s(&params[0][0]), &[0.85, -2.1]), "{:?}", to_f32s(&params[0][0]));
    assert!(close(to_f32s(&params[0][1]), &[-0.5]));
    sgd.step(&spec, &mut params, &grads, lr, &s);
    // weights: h = 0.9·(0.15, 0.1) + 0.5·(0.2 + 0.085, 0.4 − 0.21) = (0.2775, 0.185); w = (0.5725, −2.285)
    // bias:    h = 0.9·1 + 0.5·2·1 = 1.9; b = −2.4
    assert!(close(to_f32s(&params[0][0]), &[0.5725, -2.285]), "{:?}", to_f32s(&params[0][0]));
    assert!(close(to_f32s(&params[0][1]), &[-2.4]));
}

/// A small conv net on 12×12 stored images cropped to 10×10.
fn tiny() -> (Net, Preprocess, Vec<image::RgbImage>, Vec<usize>) {
    let text = r#"input: "data" input_dim: 1 input_dim: 3 input_dim: 10 input_dim: 10
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
        layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
        layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" }
        layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 2 } }
        layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }"#;
    let spec = prototxt::parse(text, "tiny").unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 9);
    let net = Net::new(spec, &weights, &Device::flex()).unwrap();
    let pre = Preprocess { resize: Resize::Warp(12), crop: 10, ..Preprocess::caffe(10) };
    let images: Vec<image::RgbImage> = (0..12u32)
        .map(|i| image::RgbImage::from_fn(12, 12, |x, y| image::Rgb([(x * 20 + i * 7) as u8, (y * 20) as u8, (i * 19) as u8])))
        .collect();
    let labels = (0..12).map(|i| i % 2).collect();
    (net, pre, images, labels)
}

#[test]
fn resume_after_interruption_is_bit_identical() {
    let paper = SolverSettings { epochs: 4.0, batch: 6, micro_batch: 3, step_epochs: 2.0, base_lr: 0.01, ..Default::default() };
    // Every option that keeps state or draws random numbers: the weight
    // average, the L2-SP anchor, the strong augmentation, the schedule.
    let options = SolverSettings {
        schedule: Schedule::Cosine,
        warmup_epochs: 1.0,
        layer_decay: 0.8,
        decay_to: DecayTarget::Pretrained,
        swa_epochs: 2.0,
        augment: Augment::Strong,
        ..paper.clone()
    };
    for s in [paper, options] {
        let run = |dir: &std::path::Path, interrupt: bool| -> Weights {
            let (mut net, pre, images, labels) = tiny();
            let refs: Vec<&image::RgbImage> = images.iter().collect();
            let train_dir = TrainDir::new(dir);
            let cfg = |stop| FitConfig { settings: &s, seed: 4, run_dir: &train_dir, name: "tiny".into(), stop_after: stop, new_layers: &[] };
            if interrupt {
                // Stopped inside the weight-averaged epochs (iterations 5–8 of 8).
                fit(&mut net, &pre, &refs, &labels, &cfg(Some(6)), |_| None).unwrap();
                // A fresh process: new net from the initial weights, state from the checkpoint.
                let (fresh, ..) = tiny();
                net = fresh;
            }
            let log = fit(&mut net, &pre, &refs, &labels, &cfg(None), |_| None).unwrap();
            assert_eq!(log.len(), 4, "one log line per epoch");
            net.weights()
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let straight = run(a.path(), false);
        let resumed = run(b.path(), true);
        assert_eq!(straight, resumed, "{s:?}");
        let (initial, ..) = tiny();
        assert_ne!(straight, initial.weights(), "training changed the weights");
        let log_a = std::fs::read_to_string(a.path().join("log.jsonl")).unwrap();
        let log_b = std::fs::read_to_string(b.path().join("log.jsonl")).unwrap();
        let losses = |t: &str| t.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap()).collect::<Vec<_>>();
        assert_eq!(losses(&log_a), losses(&log_b));
    }
}

/// CaffeNet from the synthetic caffemodel (random weights written in the
/// zoo's V1 format and read back), and `n` real Twitter training images.
fn caffenet_and_images(dir: &std::path::Path, n: usize) -> (deepsent::model::saved::SavedModel, ImageCache, Vec<usize>) {
    let spec = Arch::CaffeNet.spec().unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 5);
    let model_path = dir.join("caffenet.caffemodel");
    std::fs::write(&model_path, caffemodel::encode_v1(&weights, &spec)).unwrap();
    let loaded = deepsent::model::load::load_model(Some(&Arch::CaffeNet), &model_path).unwrap();
    let ds = data::load(&DataRequest { root: common::twitter_root(), subset: Subset::Five, folds: FoldSource::default(), extra_train: None }).into_result().unwrap();
    let pick: Vec<usize> = ds.folds[0].train[..n].to_vec();
    let paths: Vec<_> = pick.iter().map(|&i| ds.items[i].path.clone()).collect();
    let cache = ImageCache::build(&paths, &loaded.preprocess, 1 << 26).unwrap();
    let labels: Vec<usize> = pick.iter().map(|&i| ds.items[i].label.index()).collect();
    (loaded, cache, labels)
}

#[test]
fn caffenet_fine_tunes_from_a_caffemodel_on_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let (loaded, cache, labels) = caffenet_and_images(dir.path(), 8);
    let patient = Patient::new(loaded.spec, loaded.weights).operate(&parse_ops("replace:fc8:2").unwrap(), 1).unwrap();
    assert_eq!(patient.weights.layers["fc8"][0].shape, vec![2, 4096]);
    let mut net = Net::new(patient.spec, &patient.weights, &Device::flex()).unwrap();
    let refs: Vec<&image::RgbImage> = cache.images.iter().collect();
    // 8 images, batch 8: each iteration is one epoch over the same images.
    let s = SolverSettings { epochs: 4.0, batch: 8, micro_batch: 4, base_lr: 0.01, ..Default::default() };
    let run_dir = dir.path().join("run");
    let log = fit(&mut net, &loaded.preprocess, &refs, &labels, &FitConfig { settings: &s, seed: 0, run_dir: &TrainDir::new(&run_dir), name: "caffenet".into(), stop_after: None, new_layers: &[] }, |_| None).unwrap();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|e| e.loss.is_finite()));
    assert!(log[3].loss < log[0].loss, "loss did not fall: {:?}", log.iter().map(|e| e.loss).collect::<Vec<_>>());
}

#[test]
fn every_caffenet_surgery_preset_trains_on_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let (loaded, cache, labels) = caffenet_and_images(dir.path(), 4);
    let refs: Vec<&image::RgbImage> = cache.images.iter().collect();
    for preset in deepsent::model::surgery::presets("caffenet") {
        let ops = parse_ops(preset.ops).unwrap();
        let patient = Patient::new(loaded.spec.clone(), loaded.weights.clone()).operate(&ops, 1).unwrap();
        let mut net = Net::new(patient.spec, &patient.weights, &Device::flex()).unwrap();
        let base_lr = preset.base_lr.unwrap_or(0.001);
        let s = SolverSettings { epochs: 2.0, batch: 4, micro_batch: 4, base_lr, ..Default::default() };
        let run_dir = dir.path().join(preset.name);
        let log = fit(&mut net, &loaded.preprocess, &refs, &labels, &FitConfig { settings: &s, seed: 0, run_dir: &TrainDir::new(&run_dir), name: preset.name.into(), stop_after: None, new_layers: &[] }, |_| None).unwrap();
        assert_eq!(log.len(), 2, "{}", preset.name);
        assert!(log.iter().all(|e| e.loss.is_finite() && e.loss > 0.0), "{}: {:?}", preset.name, log);
    }
}

#[test]
fn a_probe_initialised_head_starts_at_the_probes_accuracy() {
    // Images whose red channel tells the class: a linear probe separates them.
    let (net, pre, _, _) = tiny();
    let images: Vec<image::RgbImage> = (0..40u32)
        .map(|i| {
            let red = if i % 2 == 1 { 200 } else { 40 } + (i * 3 % 17) as u8;
            image::RgbImage::from_fn(12, 12, |x, y| image::Rgb([red, ((x * 13 + y * 7 + i) % 255) as u8, 90]))
        })
        .collect();
    let labels: Vec<usize> = (0..40).map(|i| i % 2).collect();
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let patient = Patient::new(net.spec.clone(), net.weights()).operate(&parse_ops("replace:fc:2").unwrap(), 0).unwrap();
    assert_eq!(patient.new_layers, ["fc"]);
    let mut net = Net::new(patient.spec, &patient.weights, &Device::flex()).unwrap();
    let before = deepsent::eval::metrics::score(&deepsent::eval::scoring::probabilities(&net, &pre, &refs, deepsent::eval::scoring::Views::Center, 8), &labels);
    let p = deepsent::eval::probe_init::init_head_from_probe(&mut net, "fc", &pre, &refs, &labels, 8).unwrap();
    let after = deepsent::eval::metrics::score(&deepsent::eval::scoring::probabilities(&net, &pre, &refs, deepsent::eval::scoring::Views::Center, 8), &labels);
    assert!(p.inner_accuracy >= 0.9, "{p:?}");
    assert!(after.accuracy >= 0.95, "probe-initialised accuracy {} (random head: {})", after.accuracy, before.accuracy);
}
