//! Throughput of a network on random weights and inputs: inference, or a
//! training step (forward, backward, Caffe SGD update), to compare with the
//! PyTorch reference benchmark (`../shared/bench/torch_caffenet_bench.py`).

use super::fit::cross_entropy;
use crate::model::init::torch_like_weights;
use super::solver::{Sgd, SolverSettings};
use crate::model::net::{to_f32s, Mode, Net};
use crate::model::NetSpec;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub arch: String,
    pub mode: String,
    pub batch: usize,
    pub iterations: usize,
    /// Median seconds per iteration after 2 warm-up iterations.
    pub median_seconds: f64,
    pub images_per_second: f64,
    pub all_seconds: Vec<f64>,
    pub threads: usize,
}

pub fn run(arch: &str, spec: NetSpec, train: bool, batch: usize, iterations: usize, device: &Device) -> anyhow::Result<BenchResult> {
    let weights = torch_like_weights(&spec, 0);
    let mut net = Net::new(spec, &weights, device)?;
    let i = net.spec.input.clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let x: Vec<f32> = (0..batch * i.channels * i.height * i.width).map(|_| rng.gen_range(-100.0..100.0)).collect();
    let labels: Vec<usize> = (0..batch).map(|k| k % 2).collect();
    let settings = SolverSettings::default();
    let mut sgd = Sgd::new(&net.params);
    let logits = net.spec.logits_blob().to_string();
    let mut times = Vec::new();
    for it in 0..iterations + 2 {
        let t = Instant::now();
        if train {
            let dev = net.device().clone().autodiff();
            let tracked: Vec<Vec<Tensor<1>>> = net.params.iter().map(|b| b.iter().map(|t| t.clone().autodiff().require_grad()).collect()).collect();
            let input = net.input(x.clone(), &dev);
            let mut drop_rng = rand_chacha::ChaCha8Rng::seed_from_u64(it as u64);
            let out = net.forward_with(&tracked, input, &mut Mode::train(&mut drop_rng), &[logits.as_str()]).remove(&logits).unwrap();
            let loss = cross_entropy(out, &labels, 0.0, &dev);
            let grads = loss.backward();
            let g: Vec<Vec<Option<Tensor<1>>>> = tracked.iter().map(|b| b.iter().map(|t| t.grad(&grads)).collect()).collect();
            // As in training: the tracked copies go before the update, which then runs in place.
            drop(tracked);
            sgd.step(&net.spec, &mut net.params, &g, 1e-6, &settings);
            let _ = to_f32s(&net.params.last().and_then(|b| b.first()).cloned().unwrap_or_else(|| net.params.iter().flatten().next().unwrap().clone()));
        } else {
            let out = net.predict(net.input(x.clone(), net.device()));
            let _ = to_f32s(&out);
        }
        if it >= 2 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    Ok(BenchResult {
        arch: arch.into(),
        mode: if train { "train" } else { "infer" }.into(),
        batch,
        iterations,
        median_seconds: median,
        images_per_second: batch as f64 / median,
        all_seconds: times,
        threads: rayon::current_num_threads(),
    })
}
