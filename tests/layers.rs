//! Each layer type against a hand-computed small case, and its gradient
//! against finite differences.

use burn::prelude::*;
use deepsent::model::caffe::prototxt;
use deepsent::model::net::{to_f32s, Mode};
use deepsent::model::{Blob, Net, Weights};
use rand::{Rng, SeedableRng};

fn net(text: &str, weights: &[(&str, Vec<(Vec<usize>, Vec<f32>)>)]) -> Net {
    let spec = prototxt::parse(text, "test").unwrap();
    let mut w = Weights::default();
    for (name, blobs) in weights {
        w.layers.insert(name.to_string(), blobs.iter().map(|(s, d)| Blob::new(s.clone(), d.clone())).collect());
    }
    Net::new(spec, &w, &Device::flex()).unwrap()
}

fn run(net: &Net, input: Vec<f32>, blob: &str) -> (Vec<usize>, Vec<f32>) {
    let x = net.input(input, net.device());
    let out = net.blobs(x, &[blob]).unwrap().remove(blob).unwrap();
    (out.dims().to_vec(), to_f32s(&out))
}

fn input(c: usize, h: usize, w: usize) -> String {
    format!("input: \"data\" input_dim: 1 input_dim: {c} input_dim: {h} input_dim: {w}\n")
}

#[test]
fn grouped_convolution_by_hand() {
    // 2 input channels, 2 groups, 2 outputs, 1×1 kernel: output k sees only input k.
    let text = input(2, 1, 2) + r#"layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 1 group: 2 } }"#;
    let n = net(&text, &[("c", vec![(vec![2, 1, 1, 1], vec![2.0, -1.0]), (vec![2], vec![0.5, 1.0])])]);
    let (dims, y) = run(&n, vec![1.0, 2.0, 10.0, 20.0], "c");
    assert_eq!(dims, [1, 2, 1, 2]);
    assert_eq!(y, [2.5, 4.5, -9.0, -19.0]);
}

#[test]
fn padded_strided_convolution_by_hand() {
    // 1 channel 3×3 input 1..9, kernel 2×2 of ones, stride 2, pad 1 → 2×2 output.
    let text = input(1, 3, 3) + r#"layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 1 kernel_size: 2 stride: 2 pad: 1 } }"#;
    let n = net(&text, &[("c", vec![(vec![1, 1, 2, 2], vec![1.0; 4]), (vec![1], vec![0.0])])]);
    let (dims, y) = run(&n, (1..=9).map(|v| v as f32).collect(), "c");
    assert_eq!(dims, [1, 1, 2, 2]);
    // windows (rows −1..0, 1..2) × (cols −1..0, 1..2): 1, 2+3, 4+7, 5+6+8+9
    assert_eq!(y, [1.0, 5.0, 11.0, 28.0]);
}

#[test]
fn lrn_uses_caffes_formula() {
    // 3 channels at one pixel: x = (1, 2, 3), local_size 3, alpha 3, beta 1, k 1:
    // scale_c = 1 + alpha/3 · Σ_{window} x² → (1+1+4, 1+1+4+9, 1+4+9) = (6, 15, 14).
    let text = input(3, 1, 1) + r#"layer { name: "n" type: "LRN" bottom: "data" top: "n" lrn_param { local_size: 3 alpha: 3 beta: 1 k: 1 } }"#;
    let (_, y) = run(&net(&text, &[]), vec![1.0, 2.0, 3.0], "n");
    let want = [1.0 / 6.0, 2.0 / 15.0, 3.0 / 14.0];
    for (a, b) in y.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{y:?}");
    }
}

#[test]
fn ceil_max_pooling_and_global_average_by_hand() {
    // 4×4 input 0..15, max 3×3 stride 2: ceil → 2×2 (floor would give 1×1).
    let text = input(1, 4, 4)
        + r#"layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
             layer { name: "g" type: "Pooling" bottom: "data" top: "g" pooling_param { pool: AVE global_pooling: true } }"#;
    let n = net(&text, &[]);
    let (dims, y) = run(&n, (0..16).map(|v| v as f32).collect(), "p");
    assert_eq!(dims, [1, 1, 2, 2]);
    assert_eq!(y, [10.0, 11.0, 14.0, 15.0]);
    let (dims, y) = run(&n, (0..16).map(|v| v as f32).collect(), "g");
    assert_eq!(dims, [1, 1, 1, 1]);
    assert_eq!(y, [7.5]);
}

#[test]
fn batchnorm_scale_and_eltwise_by_hand() {
    // BatchNorm blobs hold sums: mean 4/2 = 2, variance 8/2 = 4, factor 2; eps 0.
    // y = (x − 2) / 2, then Scale ×3 + 1, then Eltwise adds the input.
    let text = input(1, 1, 2)
        + r#"layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { eps: 0 } }
             layer { name: "sc" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true } }
             layer { name: "sum" type: "Eltwise" bottom: "bn" bottom: "data" top: "sum" }"#;
    let n = net(&text, &[
        ("bn", vec![(vec![1], vec![4.0]), (vec![1], vec![8.0]), (vec![1], vec![2.0])]),
        ("sc", vec![(vec![1], vec![3.0]), (vec![1], vec![1.0])]),
    ]);
    let (_, y) = run(&n, vec![4.0, 0.0], "sum");
    // x = 4: (4−2)/2 = 1 → 3·1+1 = 4 → +4 = 8;  x = 0: −1 → −2 → −2
    assert_eq!(y, [8.0, -2.0]);
}

#[test]
fn concat_and_eltwise_keep_the_order_of_their_bottoms() {
    // Three 1-channel blobs a = x, b = 2x, c = 3x (1×1 convolutions), x = (1, 2).
    let text = input(1, 1, 2)
        + &["a", "b", "c"].iter().map(|n| format!(r#"layer {{ name: "{n}" type: "Convolution" bottom: "data" top: "{n}" convolution_param {{ num_output: 1 kernel_size: 1 bias_term: false }} }} "#)).collect::<String>()
        + r#"layer { name: "two" type: "Concat" bottom: "c" bottom: "a" top: "two" }
             layer { name: "three" type: "Concat" bottom: "a" bottom: "b" bottom: "c" top: "three" }
             layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "sum" eltwise_param { coeff: 1 coeff: 10 coeff: 100 } }"#;
    let one = |k: f32| vec![(vec![1, 1, 1, 1], vec![k])];
    let n = net(&text, &[("a", one(1.0)), ("b", one(2.0)), ("c", one(3.0))]);
    let (dims, y) = run(&n, vec![1.0, 2.0], "two");
    assert_eq!((dims, y), (vec![1, 2, 1, 2], vec![3.0, 6.0, 1.0, 2.0]));
    let (dims, y) = run(&n, vec![1.0, 2.0], "three");
    assert_eq!((dims, y), (vec![1, 3, 1, 2], vec![1.0, 2.0, 2.0, 4.0, 3.0, 6.0]));
    // 1·x + 10·2x + 100·3x = 321x
    let (_, y) = run(&n, vec![1.0, 2.0], "sum");
    assert_eq!(y, [321.0, 642.0]);
}

#[test]
fn batchnorm_on_batch_statistics_by_hand() {
    // Stored: mean 2, variance 4 (sums 4 and 8 over factor 2). The batch (one
    // channel, values 1 and 3) has mean 2 and biased variance 1: normalised
    // by it, y = x − 2. The running statistics move 10 % toward the batch's,
    // its variance made unbiased (×2/1): mean 2, variance 0.9·4 + 0.1·2 = 3.8.
    let text = input(1, 1, 2) + r#"layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { eps: 0 } }"#;
    let mut n = net(&text, &[("bn", vec![(vec![1], vec![4.0]), (vec![1], vec![8.0]), (vec![1], vec![2.0])])]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut stats = Vec::new();
    let x = n.input(vec![1.0, 3.0], &Device::flex());
    let y = n.forward_with(&n.params, x, &mut Mode::Train { rng: &mut rng, batch_stats: Some(&mut stats) }, &["bn"]).remove("bn").unwrap();
    assert_eq!(to_f32s(&y), [-1.0, 1.0]);
    assert_eq!((stats[0].mean.clone(), stats[0].var.clone(), stats[0].count), (vec![2.0], vec![1.0], 2));
    deepsent::model::net::update_running_stats(&mut n.params, &stats, 0.1);
    // Stored as sums over the factor 2: mean 2·2 = 4, variance 3.8·2 = 7.6.
    assert_eq!(to_f32s(&n.params[0][0]), [4.0]);
    assert!((to_f32s(&n.params[0][1])[0] - 7.6).abs() < 1e-5);
    // At test time the stored statistics: (x − 2) / √3.8.
    let (_, t) = run(&n, vec![1.0, 3.0], "bn");
    assert!((t[1] - 1.0 / 3.8f32.sqrt()).abs() < 1e-5, "{t:?}");
}

/// A network with every layer type, on a 2 × 4 × 9 × 9 input; `pw` and `dw`
/// run with their ReLUs fused (a plain one, and one clipped low enough to
/// bite), bn + scale and bn2 + sc2 + aff_relu6 as per-channel affine maps,
/// e1 … fire (a Fire module's expand layers) as one convolution pair.
const ALL_LAYERS: &str = r#"
input: "data" input_dim: 2 input_dim: 4 input_dim: 9 input_dim: 9
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 group: 2 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" relu_param { negative_slope: 0.1 } }
layer { name: "lrn" type: "LRN" bottom: "conv" top: "lrn" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 } }
layer { name: "pool" type: "Pooling" bottom: "lrn" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "apool" type: "Pooling" bottom: "lrn" top: "apool" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "sum" type: "Eltwise" bottom: "pool" bottom: "apool" top: "sum" eltwise_param { coeff: 1 coeff: -0.5 } }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "apool" top: "cat" }
layer { name: "pw" type: "Convolution" bottom: "cat" top: "pw" convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "pw_relu" type: "ReLU" bottom: "pw" top: "pw" }
layer { name: "dw" type: "Convolution" bottom: "pw" top: "dw" convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 6 } }
layer { name: "dw_relu6" type: "Clip" bottom: "dw" top: "dw" clip_param { min: 0 max: 0.3 } }
layer { name: "bn2" type: "BatchNorm" bottom: "cat" top: "aff" }
layer { name: "sc2" type: "Scale" bottom: "aff" top: "aff" scale_param { bias_term: false } }
layer { name: "aff_relu6" type: "Clip" bottom: "aff" top: "aff" clip_param { min: 0 max: 0.3 } }
layer { name: "e1" type: "Convolution" bottom: "cat" top: "e1" convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "e1_relu" type: "ReLU" bottom: "e1" top: "e1" }
layer { name: "e3" type: "Convolution" bottom: "cat" top: "e3" convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
layer { name: "e3_relu" type: "ReLU" bottom: "e3" top: "e3" }
layer { name: "fire" type: "Concat" bottom: "e1" bottom: "e3" top: "fire" }
layer { name: "mix" type: "Concat" bottom: "cat" bottom: "dw" bottom: "aff" bottom: "fire" top: "mix" }
layer { name: "gpool" type: "Pooling" bottom: "mix" top: "gpool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "mix" top: "fc" inner_product_param { num_output: 3 } }
"#;

#[test]
fn gradients_agree_with_finite_differences() {
    check_gradients(false);
}

/// In training with batch statistics, BatchNorm's mean and variance depend
/// on its input: the gradients of the layers below must include that path.
#[test]
fn gradients_with_batch_statistics_agree_with_finite_differences() {
    check_gradients(true);
}

fn check_gradients(batch_stats: bool) {
    let spec = prototxt::parse(ALL_LAYERS, "all").unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut w = Weights::default();
    for (l, shapes) in spec.layers.iter().zip(spec.param_shapes().unwrap()) {
        if shapes.is_empty() {
            continue;
        }
        let blobs = shapes
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let n: usize = s.iter().product();
                let data = match (l.name.as_str(), i) {
                    ("bn" | "bn2", 0) => (0..n).map(|_| rng.gen_range(-0.2..0.2)).collect(),
                    ("bn" | "bn2", 1) => (0..n).map(|_| rng.gen_range(0.5..1.5)).collect(),
                    ("bn" | "bn2", 2) => vec![1.0],
                    _ => (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect(),
                };
                Blob::new(s, data)
            })
            .collect();
        w.layers.insert(l.name.clone(), blobs);
    }
    let net = Net::new(spec, &w, &Device::flex()).unwrap();
    for fused in ["pw_relu", "dw_relu6", "scale", "sc2", "aff_relu6", "e1_relu", "e3", "e3_relu", "fire"] {
        assert!(net.fused_into_previous(net.spec.layer_index(fused).unwrap()), "{fused} runs inside the step before it");
    }
    assert!(!net.fused_into_previous(net.spec.layer_index("relu").unwrap()), "a leaky ReLU is its own layer");
    let x: Vec<f32> = (0..2 * 4 * 81).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let probe_fc: Vec<f32> = (0..6).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let probe_g: Vec<f32> = (0..2 * 27).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let dev = Device::flex();
    // A scalar of the outputs: Σ fc·a + Σ gpool·b.
    let objective = |params: &Vec<Vec<Tensor<1>>>, device: &Device| -> Tensor<1> {
        let input = net.input(x.clone(), device);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut stats = Vec::new();
        let mut mode = if batch_stats { Mode::Train { rng: &mut rng, batch_stats: Some(&mut stats) } } else { Mode::Test };
        let mut out = net.forward_with(params, input, &mut mode, &["fc", "gpool"]);
        let a = Tensor::<4>::from_data(burn::tensor::TensorData::new(probe_fc.clone(), [2, 3, 1, 1]), device);
        let b = Tensor::<4>::from_data(burn::tensor::TensorData::new(probe_g.clone(), [2, 27, 1, 1]), device);
        (out.remove("fc").unwrap() * a).sum() + (out.remove("gpool").unwrap() * b).sum()
    };
    let ad = dev.clone().autodiff();
    let tracked: Vec<Vec<Tensor<1>>> = net.params.iter().map(|b| b.iter().map(|t| t.clone().autodiff().require_grad()).collect()).collect();
    let grads = objective(&tracked, &ad).backward();
    let eps = 5e-3f32;
    let mut checked = 0;
    let mut layers_checked = std::collections::BTreeSet::new();
    for (l, blobs) in tracked.iter().enumerate() {
        let name = &net.spec.layers[l].name;
        for (b, t) in blobs.iter().enumerate() {
            let Some(g) = t.grad(&grads) else { continue };
            let g = to_f32s(&g);
            if batch_stats && name == "conv" && b == 1 {
                // A bias before a BatchNorm on batch statistics is subtracted
                // again with the batch mean: it cannot change the output.
                assert!(g.iter().all(|v| v.abs() < 1e-5), "conv bias gradient {g:?} under batch statistics");
            }
            let values = to_f32s(&net.params[l][b]);
            // A few coordinates of each blob.
            for k in [0, values.len() / 2, values.len() - 1] {
                let at = |delta: f32| -> f32 {
                    let mut p = net.params.clone();
                    let mut v = values.clone();
                    v[k] += delta;
                    p[l][b] = Tensor::from_data(burn::tensor::TensorData::new(v, [values.len()]), &dev);
                    to_f32s(&objective(&p, &dev))[0]
                };
                let (f0, fp, fm) = (at(0.0), at(eps), at(-eps));
                let (left, right) = ((f0 - fm) / eps, (fp - f0) / eps);
                if (left - right).abs() > 0.02 * left.abs().max(right.abs()).max(0.1) {
                    continue; // a kink (ReLU, max) inside ±eps: no derivative to compare
                }
                let numeric = (fp - fm) / (2.0 * eps);
                // With batch statistics a parameter moves every value after
                // the next BatchNorm, and many cross a clip within ±eps: the
                // finite difference is rougher there.
                let tol = if batch_stats { 4e-2 } else { 2e-2 } * numeric.abs().max(g[k].abs()).max(0.1);
                assert!((numeric - g[k]).abs() < tol, "{name} blob {b} [{k}]: autodiff {} vs finite difference {numeric}", g[k]);
                checked += 1;
                layers_checked.insert(name.clone());
            }
        }
    }
    assert!(checked >= 24, "checked {checked} coordinates");
    for l in ["conv", "pw", "dw", "scale", "sc2", "e1", "e3", "fc"] {
        assert!(layers_checked.contains(l), "{l} checked (checked: {layers_checked:?})");
    }
}

/// The Fire-like pair of ALL_LAYERS runs as one step; asking for one of its
/// convolutions' outputs runs it apart, and both ways give the same blob.
#[test]
fn a_fused_convolution_pair_equals_its_layers_apart() {
    let spec = prototxt::parse(ALL_LAYERS, "all").unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 5);
    let n = Net::new(spec, &weights, &Device::flex()).unwrap();
    assert!(n.fused_into_previous(n.spec.layer_index("fire").unwrap()));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let x: Vec<f32> = (0..2 * 4 * 81).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let fused = n.blobs(n.input(x.clone(), n.device()), &["fire"]).unwrap();
    let apart = n.blobs(n.input(x, n.device()), &["e1", "e3", "fire"]).unwrap();
    let (fused, whole) = (to_f32s(&fused["fire"]), to_f32s(&apart["fire"]));
    assert_eq!(fused, whole);
    let (e1, e3) = (to_f32s(&apart["e1"]), to_f32s(&apart["e3"]));
    assert!(e1.iter().chain(&e3).all(|v| *v >= 0.0) && e1.iter().any(|v| *v > 0.0), "both through their ReLU");
    // Image 0 of fire: e1's 3 channels, then e3's 2 (3×3 maps).
    assert_eq!(&fused[..27], &e1[..27]);
    assert_eq!(&fused[27..45], &e3[..18]);
}
