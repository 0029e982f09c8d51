//! Sentiment maps against independent references: a hand-built network
//! where one position alone can contribute, CAM = Grad-CAM on a network that
//! ends in global average pooling (real SqueezeNet weights), and the CLI on
//! real Twitter images.

mod common;

use burn::prelude::*;
use deepsent::eval::maps::{image_map, linear_head, Mapper, Method};
use deepsent::eval::scoring::Views;
use deepsent::model::caffe::prototxt;
use deepsent::model::surgery::{resolve, Patient};
use deepsent::model::{Arch, Blob, Net, Weights};

/// 3 × 8 × 8 input → 1 × 1 convolution summing the channels → ReLU →
/// global average pooling → 2 outputs (negative −x, positive +x + 0.5).
fn hand_built() -> Net {
    let text = r#"input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "r" type: "ReLU" bottom: "c" top: "c" }
layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" inner_product_param { num_output: 2 } }
"#;
    let spec = prototxt::parse(text, "hand-built").unwrap();
    let mut w = Weights::default();
    w.layers.insert("c".into(), vec![Blob::new(vec![1, 3, 1, 1], vec![1.0, 1.0, 1.0]), Blob::new(vec![1], vec![0.0])]);
    w.layers.insert("fc".into(), vec![Blob::new(vec![2, 1], vec![-1.0, 1.0]), Blob::new(vec![2], vec![0.0, 0.5])]);
    Net::new(spec, &w, &Device::flex()).unwrap()
}

#[test]
fn on_a_hand_built_network_the_map_peaks_where_the_only_evidence_is() {
    let net = hand_built();
    // One bright position (row 5, column 2), every other position zero.
    let mut x = vec![0.0f32; 3 * 64];
    for c in 0..3 {
        x[c * 64 + 5 * 8 + 2] = 1.0;
    }
    for method in [Method::Cam, Method::GradCam] {
        let mapper = Mapper::new(&net, Some(method), Some("c")).unwrap();
        let (grids, log_odds) = mapper.maps(net.input(x.clone(), net.device()));
        let g = &grids[0];
        assert_eq!((g.height, g.width), (8, 8));
        // The convolution gives 3 there; the log-odds weight is 1 − (−1) = 2.
        for (i, v) in g.values.iter().enumerate() {
            let expected = if i == 5 * 8 + 2 { 6.0 } else { 0.0 };
            assert!((v - expected).abs() < 1e-5, "{method}: position {i}: {v}");
        }
        // The map's mean plus the bias difference is the log-odds: 6/64 + 0.5.
        assert!((log_odds[0] - (6.0 / 64.0 + 0.5)).abs() < 1e-5, "{log_odds:?}");
    }
    // Occlusion, one cell a pixel: only hiding the bright pixel changes the
    // log-odds, from 6/64 + 0.5 to 0.5; with 2 × 2-pixel cells, its cell.
    for (cells, at) in [(8, 5 * 8 + 2), (4, 2 * 4 + 1)] {
        let mapper = Mapper::new(&net, Some(Method::Occlusion), None).unwrap().with_cells(cells).unwrap();
        assert_eq!((mapper.layer.as_str(), mapper.describe_layer()), ("data", format!("data, {cells} × {cells} cells")));
        let (grids, log_odds) = mapper.maps(net.input(x.clone(), net.device()));
        assert_eq!((grids[0].height, grids[0].width), (cells, cells));
        for (i, v) in grids[0].values.iter().enumerate() {
            let expected = if i == at { 6.0 / 64.0 } else { 0.0 };
            assert!((v - expected).abs() < 1e-5, "occlusion, {cells} cells: cell {i}: {v}");
        }
        assert!((log_odds[0] - (6.0 / 64.0 + 0.5)).abs() < 1e-5, "{log_odds:?}");
    }
    // RISE, masks of one cell a pixel: P(positive) = σ(0.5 + 6/64 · m) for
    // the mask's value m at the bright pixel, so the slope there is about
    // σ'(0.5 + 3/64) · 6/64; elsewhere only the masks' smoothness ties a
    // position to that pixel, and three pixels off the slope is noise.
    let rise = Mapper::new(&net, Some(Method::Rise), None).unwrap().with_grid(Some(8), 512, 5).unwrap();
    assert_eq!(rise.describe_layer(), "data, 512 masks of 8 × 8 cells");
    // The deletion test's random baseline deletes blobs of the masks' cells, not pixels.
    assert_eq!(rise.baseline_cells(), Some(8));
    assert_eq!(Mapper::new(&net, Some(Method::Occlusion), None).unwrap().baseline_cells(), None);
    let (grids, log_odds) = rise.maps(net.input(x.clone(), net.device()));
    assert!((log_odds[0] - (6.0 / 64.0 + 0.5)).abs() < 1e-5, "{log_odds:?}");
    let g = &grids[0];
    assert_eq!((g.height, g.width), (8, 8));
    let p = 1.0 / (1.0 + (-(0.5f32 + 3.0 / 64.0)).exp());
    let expected = p * (1.0 - p) * 6.0 / 64.0;
    let peak = g.values[5 * 8 + 2];
    assert!((peak - expected).abs() < 0.02 * expected, "RISE at the pixel: {peak}, expected {expected}");
    for (i, v) in g.values.iter().enumerate() {
        let (row, col) = (i / 8, i % 8);
        assert!(i == 5 * 8 + 2 || *v < peak, "RISE: position {i} ({v}) not below the pixel's {peak}");
        if row.abs_diff(5).max(col.abs_diff(2)) >= 3 {
            assert!(v.abs() < 0.2 * expected, "RISE: position {i}, far from the pixel: {v}");
        }
    }
    assert!(rise.with_grid(None, 1, 0).err().unwrap().contains("at least 2 masks"));
    // Extremal perturbation, one cell a pixel: only deleting the bright
    // pixel lowers P(positive), so its cell is deleted first, everywhere else
    // the gradient is zero and the scores stay 0.
    let extremal = Mapper::new(&net, Some(Method::Extremal), None).unwrap().with_cells(8).unwrap().with_steps(5).unwrap();
    assert_eq!(extremal.describe_layer(), "data, masks of 8 × 8 cells, 5 steps");
    assert_eq!(extremal.baseline_cells(), Some(8));
    let (grids, log_odds) = extremal.maps(net.input(x.clone(), net.device()));
    assert!((log_odds[0] - (6.0 / 64.0 + 0.5)).abs() < 1e-5, "{log_odds:?}");
    let g = &grids[0];
    assert_eq!((g.height, g.width), (8, 8));
    assert!(g.values[5 * 8 + 2] > 0.5, "the bright pixel's score {}", g.values[5 * 8 + 2]);
    for (i, v) in g.values.iter().enumerate() {
        assert!(i == 5 * 8 + 2 || v.abs() < 1e-6, "extremal: position {i}: {v}");
    }
    assert!(Mapper::new(&net, Some(Method::Extremal), None).unwrap().with_steps(0).err().unwrap().contains("at least 1 gradient step"));
    // Greedy deletion, 2 × 2-pixel cells in 4 rounds of 4: only deleting the
    // bright pixel's cell lowers P(positive), so it goes first; the other
    // cells tie and go by position. The first round takes the whole fall,
    // σ(0.5 + 6/64) − σ(0.5); a thousandth of each cell's rank from the end
    // keeps the order.
    let greedy = Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_cells(4).unwrap().with_steps(4).unwrap();
    assert_eq!(greedy.describe_layer(), "data, 4 × 4 cells in 4 rounds");
    assert_eq!(greedy.baseline_cells(), Some(4));
    let (grids, log_odds) = greedy.maps(net.input(x.clone(), net.device()));
    assert!((log_odds[0] - (6.0 / 64.0 + 0.5)).abs() < 1e-5, "{log_odds:?}");
    let g = &grids[0];
    assert_eq!((g.height, g.width), (8, 8));
    let cell_score = |row: usize, col: usize| g.values[row * 2 * 8 + col * 2];
    let sigmoid = deepsent::eval::maps::sigmoid;
    let fall = sigmoid(0.5 + 6.0 / 64.0) - sigmoid(0.5);
    for ((row, col), expected) in [((2, 1), fall + 1e-3), ((0, 0), fall + 1e-3 * 15.0 / 16.0), ((0, 2), fall + 1e-3 * 13.0 / 16.0), ((0, 3), 1e-3 * 12.0 / 16.0), ((3, 3), 1e-3 / 16.0)] {
        assert!((cell_score(row, col) - expected).abs() < 1e-6, "greedy, cell ({row}, {col}): {} vs {expected}", cell_score(row, col));
    }
    assert!(g.values.iter().enumerate().all(|(i, &v)| v == cell_score(i / 8 / 2, i % 8 / 2)), "a cell's pixels share its score");
    assert!(Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_steps(0).err().unwrap().contains("greedy deletion needs at least 1 round"));
    let occlusion = || Mapper::new(&net, Some(Method::Occlusion), None).unwrap();
    for bad in [0, 9] {
        assert!(occlusion().with_cells(bad).err().unwrap().contains("1 to 8 cells"));
    }
    assert!(Mapper::new(&net, Some(Method::Occlusion), Some("c")).err().unwrap().contains("occlusion maps the input, data"));
    let head = linear_head(&net).unwrap();
    assert_eq!(head.feature_blob, "c");
    assert_eq!(head.log_odds_weights(), [2.0]);
    assert!((head.log_odds_bias() - 0.5).abs() < 1e-12);
}

#[test]
fn the_greedy_cell_order_deletes_the_only_evidence_first_as_the_map_does() {
    let net = hand_built();
    // An 8 × 8 photo, black but for one white pixel (row 5, column 2): after
    // the mean is subtracted, only that pixel passes the ReLU.
    let mut photo = image::RgbImage::new(8, 8);
    photo.put_pixel(2, 5, image::Rgb([255, 255, 255]));
    let pre = deepsent::preprocess::Preprocess { resize: deepsent::preprocess::Resize::Direct, ..deepsent::preprocess::Preprocess::caffe(8) };
    let mapper = Mapper::new(&net, Some(Method::Cam), None).unwrap();
    let o = deepsent::eval::deletion::cell_orders(&mapper, &pre, &[&photo, &photo], 2, 3, 16, || {});
    assert_eq!((o.cells, o.images, o.fractions.len()), (2, 2, 5));
    // Deleting the white pixel's cell (the third) leaves the bias alone: P = σ(0.5).
    let bias_only = 1.0 / (1.0 + (-0.5f64).exp());
    assert!(o.curve_greedy[0] > bias_only + 0.1, "{:?}", o.curve_greedy);
    for curve in [&o.curve_greedy, &o.curve_map] {
        assert!(curve[1..].iter().all(|p| (p - bias_only).abs() < 1e-5), "{curve:?}");
    }
    assert!((o.auc_greedy - o.auc_map).abs() < 1e-9 && o.auc_map <= o.auc_random, "{o:?}");
}

#[test]
fn cam_needs_pooling_then_linear_layers_and_names_what_is_in_the_way() {
    let text = r#"input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" inner_product_param { num_output: 2 } }
layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }
"#;
    let spec = prototxt::parse(text, "t").unwrap();
    let mut w = Weights::default();
    w.layers.insert("fc".into(), vec![Blob::new(vec![2, 1], vec![1.0, 2.0]), Blob::new(vec![2], vec![0.0, 0.0])]);
    let net = Net::new(spec, &w, &Device::flex()).unwrap();
    let err = Mapper::new(&net, Some(Method::Cam), None).err().unwrap();
    assert!(err.contains("relu (ReLU)") && err.contains("Grad-CAM"), "{err}");
    // Without a method, Grad-CAM is chosen; the input has nothing before it to map.
    assert!(Mapper::new(&net, None, Some("nope")).err().unwrap().contains("no blob \"nope\""));
}

/// SqueezeNet v1.0 with its ImageNet weights and a 2-output layer on the
/// pooled scores (the Table 1 network, `lpft`), head drawn at random.
fn squeezenet_fc9_2() -> Net {
    let arch = Arch::SqueezeNet10;
    let path = arch.default_weights(&common::models_dir()).expect("SqueezeNet weights in ../shared/models");
    let model = deepsent::model::load::load_model(Some(&arch), &path).unwrap();
    let p = Patient::new(model.spec, model.weights).operate(&resolve("squeezenet1.0", "lpft").unwrap(), 7).unwrap();
    Net::new(p.spec, &p.weights, &Device::flex()).unwrap()
}

#[test]
fn grad_cam_at_the_pooled_layer_is_cam_on_real_squeezenet() {
    let net = squeezenet_fc9_2();
    let cam = Mapper::new(&net, None, None).unwrap();
    assert_eq!((cam.method, cam.layer.as_str()), (Method::Cam, "conv_final"));
    let grad = Mapper::new(&net, Some(Method::GradCam), Some("conv_final")).unwrap();
    let pre = deepsent::preprocess::Preprocess::caffe(227);
    let images: Vec<_> = std::fs::read_dir(common::twitter_root().join("images")).unwrap().take(2).map(|e| e.unwrap().path()).collect();
    for path in images {
        let stored = pre.resize_image(&deepsent::preprocess::decode::decode_file(&path, 1 << 26).unwrap());
        let (a, b) = (image_map(&cam, &pre, &stored, Views::TenCrop), image_map(&grad, &pre, &stored, Views::TenCrop));
        let peak = a.map.peak();
        assert!(peak > 0.0);
        let diff = a.map.values.iter().zip(&b.map.values).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-4 * peak, "{}: CAM and Grad-CAM differ by {diff} (peak {peak})", path.display());
        assert!((a.p_positive - b.p_positive).abs() < 1e-6);
        // The 10 views cover the whole stored image.
        assert!(a.map.values.iter().all(|v| v.is_finite()) && a.views == 10);
    }
    // Grad-CAM anywhere else: a Fire module's output, finite and not all zero.
    let fire = Mapper::new(&net, Some(Method::GradCam), Some("fire9/concat")).unwrap();
    let x = net.input(vec![10.0; 3 * 227 * 227], net.device());
    let (g, _) = fire.maps(x);
    assert_eq!((g[0].height, g[0].width), (13, 13));
    assert!(g[0].peak() > 0.0 && g[0].values.iter().all(|v| v.is_finite()));
    // A Fire pair's interior blob is computed inside a fused step.
    let err = Mapper::new(&net, Some(Method::GradCam), Some("fire9/conv1x1_2")).err().unwrap();
    assert!(err.contains("fused") && err.contains("concatenation"), "{err}");
}

#[test]
fn maps_cli_writes_an_overlay_and_the_map_at_the_images_size() {
    let dir = tempfile::tempdir().unwrap();
    // A model file: the SqueezeNet fc9-2 network saved as deepsent saves models.
    let net = squeezenet_fc9_2();
    let model = deepsent::model::saved::SavedModel {
        spec: net.spec.clone(),
        weights: net.weights(),
        preprocess: deepsent::preprocess::Preprocess::caffe(227),
        card: deepsent::model::saved::ModelCard::new("squeezenet1.0".into(), "test".into(), "test".into(), "lpft".into(), serde_json::json!({})),
    };
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    let image = std::fs::read_dir(common::twitter_root().join("images")).unwrap().next().unwrap().unwrap().path();
    let missing = dir.path().join("missing.jpg");
    let out = dir.path().join("maps");
    let o = common::deepsent().args(["maps", "--oversample", "--model"]).arg(&path).arg("--out").arg(&out).arg(&image).arg(&missing).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "a missing image fails the command");
    assert!(stdout.contains("P(positive)") && stdout.contains("missing.jpg"), "{stdout}");
    let stem = image.file_stem().unwrap().to_string_lossy().to_string();
    let png = image::open(out.join(format!("{stem}.png"))).unwrap();
    let original = image::open(&image).unwrap();
    assert_eq!(png.width(), original.width().min(1024));
    let npy = std::fs::read(out.join(format!("{stem}.npy"))).unwrap();
    let header = String::from_utf8_lossy(&npy[..128]);
    assert!(header.contains(&format!("'shape': ({}, {}", original.height(), original.width())), "{header}");

    // predict --maps writes the same files beside its answers.
    let by_predict = dir.path().join("predict-maps");
    let o = common::deepsent().args(["predict", "--oversample", "--format", "json", "--model"]).arg(&path).arg("--maps").arg(&by_predict).arg(&image).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(answer["results"][0]["positive_10crop"].is_number());
    let again = std::fs::read(by_predict.join(format!("{stem}.npy"))).unwrap();
    assert_eq!(again, npy, "the same map from predict --maps and maps");

    // Occlusion, from both commands (centre crop, 16 × 16 cells): the same
    // map, not CAM's, and not empty.
    let (occluded, by_predict) = (dir.path().join("occlusion"), dir.path().join("predict-occlusion"));
    let o = common::deepsent().args(["maps", "--method", "occlusion", "--model"]).arg(&path).arg("--out").arg(&occluded).arg(&image).output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stderr).contains("occlusion at data, 16 × 16 cells"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::deepsent().args(["predict", "--map-method", "occlusion", "--model"]).arg(&path).arg("--maps").arg(&by_predict).arg(&image).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let occlusion_npy = std::fs::read(occluded.join(format!("{stem}.npy"))).unwrap();
    assert_eq!(std::fs::read(by_predict.join(format!("{stem}.npy"))).unwrap(), occlusion_npy);
    assert_ne!(occlusion_npy, npy);
    let data = 10 + u16::from_le_bytes([occlusion_npy[8], occlusion_npy[9]]) as usize;
    assert!(occlusion_npy[data..].chunks(4).any(|b| f32::from_le_bytes(b.try_into().unwrap()) != 0.0));

    // RISE: seeded masks over a 7 × 7 grid, a map of its own; one mask is refused.
    let rise = dir.path().join("rise");
    let o = common::deepsent().args(["maps", "--method", "rise", "--masks", "64", "--seed", "0", "--model"]).arg(&path).arg("--out").arg(&rise).arg(&image).output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stderr).contains("RISE at data, 64 masks of 7 × 7 cells"), "{}", String::from_utf8_lossy(&o.stderr));
    let rise_npy = std::fs::read(rise.join(format!("{stem}.npy"))).unwrap();
    assert!(rise_npy != npy && rise_npy != occlusion_npy);
    let o = common::deepsent().args(["maps", "--method", "rise", "--masks", "1", "--model"]).arg(&path).arg("--out").arg(&rise).arg(&image).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("at least 2 masks"), "{}", String::from_utf8_lossy(&o.stderr));

    // Greedy deletion: --iterations are its rounds (its own default, not
    // extremal perturbation's steps, when not given); no rounds is refused.
    let greedy = dir.path().join("greedy");
    let o = common::deepsent().args(["maps", "--method", "greedy", "--cells", "4", "--model"]).arg(&path).arg("--out").arg(&greedy).arg(&image).output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stderr).contains("greedy deletion at data, 4 × 4 cells in 16 rounds"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::deepsent().args(["maps", "--method", "greedy", "--cells", "4", "--iterations", "2", "--model"]).arg(&path).arg("--out").arg(&greedy).arg(&image).output().unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stderr).contains("4 × 4 cells in 2 rounds"), "{}", String::from_utf8_lossy(&o.stderr));
    let greedy_npy = std::fs::read(greedy.join(format!("{stem}.npy"))).unwrap();
    assert!(greedy_npy != npy && greedy_npy != occlusion_npy && greedy_npy != rise_npy);
    let o = common::deepsent().args(["maps", "--method", "greedy", "--iterations", "0", "--model"]).arg(&path).arg("--out").arg(&greedy).arg(&image).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("at least 1 round"), "{}", String::from_utf8_lossy(&o.stderr));
}
