//! Synthetic weights for a spec: small random ones to try the pipeline and
//! to test with, PyTorch-like ones to benchmark with.

use super::{Blob, NetSpec, Weights};
use rand::{Rng, SeedableRng};

/// Small random weights (uniform ±0.01; BatchNorm's scale factor 1): what
/// `deepsent weights random` writes to try the pipeline, trainable at the
/// paper's learning rates.
pub fn random_weights(spec: &NetSpec, seed: u64) -> Weights {
    draw_weights(spec, seed, false)
}

/// Random weights drawn as PyTorch initialises its layers, for benchmarks:
/// weights and biases of convolutions and inner products uniform in
/// ±1/√fan-in, BatchNorm statistics mean 0 and variance 1, Scale 1 and 0, so
/// activations and gradients keep their scale through a deep network.
/// (With ±0.01 everywhere the signal shrinks layer after layer until the
/// backward pass runs on subnormal floats, 10–40× slower on this CPU: a
/// benchmark would measure that, and PyTorch's does not.)
pub fn torch_like_weights(spec: &NetSpec, seed: u64) -> Weights {
    draw_weights(spec, seed, true)
}

fn draw_weights(spec: &NetSpec, seed: u64, torch_like: bool) -> Weights {
    use crate::model::LayerKind::{BatchNorm, Scale};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut w = Weights::default();
    for (l, shapes) in spec.layers.iter().zip(spec.param_shapes().expect("valid spec")) {
        if shapes.is_empty() {
            continue;
        }
        let fan_in: usize = shapes[0].iter().skip(1).product();
        let bound = if torch_like { 1.0 / (fan_in.max(1) as f32).sqrt() } else { 0.01 };
        let blobs = shapes
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let n = s.iter().product();
                let v = match (&l.kind, i) {
                    (BatchNorm { .. }, 0) if torch_like => vec![0.0; n],
                    // Variance and scale factor 1.
                    (BatchNorm { .. }, _) if i > 0 => vec![1.0; n],
                    (Scale { .. }, 0) if torch_like => vec![1.0; n],
                    (Scale { .. }, _) if torch_like => vec![0.0; n],
                    _ => (0..n).map(|_| rng.gen_range(-bound..bound)).collect(),
                };
                Blob::new(s, v)
            })
            .collect();
        w.layers.insert(l.name.clone(), blobs);
    }
    w
}
