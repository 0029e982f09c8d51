//! Where a network's time goes, layer by layer: the forward pass in test
//! mode, and each layer's backward pass (gradients of its parameters, and of
//! its input where a layer below needs it), with the FLOPs of convolutions
//! and inner products so the slow operations are named by data.
//!
//! Each layer is timed on its own, on inputs of the real shapes: the forward
//! pass once through the whole net (test mode, no autodiff), then per layer a
//! forward on the autodiff device and a backward from a fixed random output
//! gradient. The sum of the per-layer backward times approximates a training
//! step's backward pass.

use crate::model::init::torch_like_weights;
use crate::model::net::{to_f32s, Mode, Net};
use crate::model::{LayerKind, NetSpec};
use burn::prelude::*;
use burn::tensor::Distribution;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct LayerProfile {
    pub name: String,
    pub kind: String,
    /// Output shape C × H × W (per image).
    pub output: Vec<usize>,
    /// Multiply-adds × 2 of the forward pass for the whole batch (0 for layers without matrix work).
    pub forward_gflop: f64,
    /// Median milliseconds of the forward pass (test mode).
    pub forward_ms: f64,
    /// Median milliseconds of the backward pass (input and parameter gradients).
    pub backward_ms: f64,
    /// FLOPs of the backward pass: one forward's worth per gradient computed (input, weights).
    pub backward_gflop: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub arch: String,
    pub batch: usize,
    pub threads: usize,
    pub layers: Vec<LayerProfile>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time_ms(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

/// Forward FLOPs of one layer for a batch of `n` (convolution and inner product only).
fn layer_gflop(kind: &LayerKind, input: &[usize], output: &[usize], n: usize) -> f64 {
    let per_image = match kind {
        LayerKind::Convolution { kernel, group, .. } => {
            2.0 * (output.iter().product::<usize>() * (input[0] / group) * kernel[0] * kernel[1]) as f64
        }
        LayerKind::InnerProduct { num_output, .. } => 2.0 * (num_output * input.iter().product::<usize>()) as f64,
        _ => 0.0,
    };
    per_image * n as f64 / 1e9
}

pub fn run(arch: &str, spec: NetSpec, batch: usize, iterations: usize, device: &Device) -> anyhow::Result<Profile> {
    let weights = torch_like_weights(&spec, 0);
    let net = Net::new(spec, &weights, device)?;
    let shapes = net.spec.infer_shapes()?;
    let i = net.spec.input.clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let x: Vec<f32> = (0..batch * i.channels * i.height * i.width).map(|_| rng.gen_range(-100.0..100.0)).collect();
    let test_device = net.device().clone();
    let train_device = test_device.clone().autodiff();

    // Every blob's value for this batch (test mode), to feed each layer alone.
    let mut blobs: HashMap<String, Tensor<4>> = HashMap::new();
    blobs.insert(i.blob.clone(), net.input(x, &test_device));
    let mut layers = Vec::new();
    for (index, layer) in net.spec.layers.iter().enumerate() {
        if net.fused_into_previous(index) {
            continue;
        }
        let inputs: Vec<Tensor<4>> = layer.bottoms.iter().map(|b| blobs[b].clone()).collect();
        let mut forward = Vec::new();
        let mut out = None;
        for _ in 0..iterations {
            let inputs = inputs.clone();
            forward.push(time_ms(|| {
                let y = net.step_forward(index, &net.params, inputs, &mut Mode::Test);
                let _ = to_f32s(&y.clone().slice([0..1, 0..1, 0..1, 0..1]));
                out = Some(y);
            }));
        }
        let out = out.expect("at least one iteration");

        // Backward: the input needs a gradient unless it is the image; the
        // parameters always (a profile of a full training step).
        let needs_input_grad = layer.bottoms.iter().any(|b| *b != i.blob);
        let learnable = net.step(index).any(|l| net.spec.layers[l].kind.is_learnable());
        let grad_out = Tensor::<4>::random(out.dims(), Distribution::Normal(0.0, 1.0), &train_device);
        let mut backward = Vec::new();
        for it in 0..iterations {
            let tracked_inputs: Vec<Tensor<4>> = inputs
                .iter()
                .map(|t| {
                    let t = t.clone().autodiff();
                    if needs_input_grad { t.require_grad() } else { t }
                })
                .collect();
            // The parameters of this step's layers are tracked, the others are constants.
            let params: Vec<Vec<Tensor<1>>> = net
                .params
                .iter()
                .enumerate()
                .map(|(l, blobs)| blobs.iter().map(|p| if net.step(index).contains(&l) && net.spec.layers[l].kind.is_learnable() { p.clone().autodiff().require_grad() } else { p.clone().autodiff() }).collect())
                .collect();
            if !needs_input_grad && !learnable {
                break;
            }
            let mut drop_rng = rand_chacha::ChaCha8Rng::seed_from_u64(it as u64);
            let y = net.step_forward(index, &params, tracked_inputs.clone(), &mut Mode::train(&mut drop_rng));
            let loss = (y * grad_out.clone()).sum();
            backward.push(time_ms(|| {
                let grads = loss.backward();
                for t in &tracked_inputs {
                    if let Some(g) = t.grad(&grads) {
                        let _ = to_f32s(&g.slice([0..1, 0..1, 0..1, 0..1]));
                    }
                }
                for t in net.step(index).flat_map(|l| &params[l]) {
                    if let Some(g) = t.grad(&grads) {
                        let _ = to_f32s(&g.slice([0..1]));
                    }
                }
            }));
        }
        // A step of several convolutions (a Fire module's expand pair) does the work of each.
        let convolutions: Vec<usize> = net.step(index).filter(|&l| matches!(net.spec.layers[l].kind, LayerKind::Convolution { .. })).collect();
        let gflop = if convolutions.len() > 1 {
            convolutions.iter().map(|&l| layer_gflop(&net.spec.layers[l].kind, &shapes.layer_inputs[l][0], &shapes.blobs[&net.spec.layers[l].tops[0]], batch)).sum()
        } else {
            layer_gflop(&layer.kind, &shapes.layer_inputs[index][0], &out.dims()[1..], batch)
        };
        let gradients = usize::from(needs_input_grad) + usize::from(learnable);
        layers.push(LayerProfile {
            name: net.step(index).map(|l| net.spec.layers[l].name.as_str()).collect::<Vec<_>>().join(" + "),
            kind: layer.kind.type_name().into(),
            output: out.dims()[1..].to_vec(),
            forward_gflop: gflop,
            forward_ms: median(forward),
            backward_ms: if backward.is_empty() { 0.0 } else { median(backward) },
            backward_gflop: gflop * gradients as f64,
        });
        // Under the step's last top (a fused step's output is its last layer's).
        blobs.insert(net.spec.layers[net.step(index).end - 1].tops[0].clone(), out);
    }
    Ok(Profile { arch: arch.into(), batch, threads: rayon::current_num_threads(), layers })
}

impl Profile {
    /// The profile as a Markdown table, slowest layer types summed at the end.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "{} batch {} ({} threads)\n\n| layer | type | output | GFLOP | forward ms | GFLOP/s | backward ms | GFLOP/s |\n|---|---|---|---|---|---|---|---|\n",
            self.arch, self.batch, self.threads
        );
        let rate = |g: f64, ms: f64| if g > 0.0 && ms > 0.0 { format!("{:.0}", g / (ms / 1e3)) } else { String::new() };
        for l in &self.layers {
            s += &format!(
                "| {} | {} | {} | {:.2} | {:.1} | {} | {:.1} | {} |\n",
                l.name,
                l.kind,
                l.output.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×"),
                l.forward_gflop,
                l.forward_ms,
                rate(l.forward_gflop, l.forward_ms),
                l.backward_ms,
                rate(l.backward_gflop, l.backward_ms)
            );
        }
        let mut by_kind: Vec<(String, f64, f64, f64, f64)> = Vec::new();
        for l in &self.layers {
            match by_kind.iter_mut().find(|k| k.0 == l.kind) {
                Some(k) => {
                    k.1 += l.forward_ms;
                    k.2 += l.backward_ms;
                    k.3 += l.forward_gflop;
                    k.4 += l.backward_gflop;
                }
                None => by_kind.push((l.kind.clone(), l.forward_ms, l.backward_ms, l.forward_gflop, l.backward_gflop)),
            }
        }
        by_kind.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)));
        let (f, b): (f64, f64) = self.layers.iter().fold((0.0, 0.0), |acc, l| (acc.0 + l.forward_ms, acc.1 + l.backward_ms));
        s += &format!("\nTotal: forward {f:.0} ms, backward {b:.0} ms.\n\n| type | forward ms | GFLOP/s | backward ms | GFLOP/s | share of forward+backward |\n|---|---|---|---|---|---|\n");
        for k in by_kind {
            s += &format!("| {} | {:.0} | {} | {:.0} | {} | {:.0} % |\n", k.0, k.1, rate(k.3, k.1), k.2, rate(k.4, k.2), 100.0 * (k.1 + k.2) / (f + b));
        }
        s
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    /// Every step of a network with a fused Fire pair is timed, the pair as
    /// one step doing the work of both convolutions.
    #[test]
    fn a_fire_module_is_profiled_as_its_steps() {
        let text = r#"input: "data" input_dim: 1 input_dim: 3 input_dim: 6 input_dim: 6
layer { name: "sq" type: "Convolution" bottom: "data" top: "sq" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "sq_relu" type: "ReLU" bottom: "sq" top: "sq" }
layer { name: "e1" type: "Convolution" bottom: "sq" top: "e1" convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "e1_relu" type: "ReLU" bottom: "e1" top: "e1" }
layer { name: "e3" type: "Convolution" bottom: "sq" top: "e3" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "e3_relu" type: "ReLU" bottom: "e3" top: "e3" }
layer { name: "fire" type: "Concat" bottom: "e1" bottom: "e3" top: "fire" }
layer { name: "pool" type: "Pooling" bottom: "fire" top: "pool" pooling_param { pool: AVE global_pooling: true } }"#;
        let spec = crate::model::caffe::prototxt::parse(text, "fire").unwrap();
        let p = run("fire", spec, 2, 1, &crate::model::device::cpu()).unwrap();
        let names: Vec<&str> = p.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["sq + sq_relu", "e1 + e1_relu + e3 + e3_relu + fire", "pool"]);
        // e1: 2·(4·36)·2 per image, e3: 2·(4·36)·(2·9), batch 2.
        let want = 2.0 * (2.0 * 144.0 * 2.0 + 2.0 * 144.0 * 18.0) / 1e9;
        assert!((p.layers[1].forward_gflop - want).abs() < 1e-15, "{} vs {want}", p.layers[1].forward_gflop);
        assert_eq!(p.layers[1].output, [8, 6, 6]);
    }
}
