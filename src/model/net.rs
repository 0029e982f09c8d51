//! A spec plus its weights, run on burn. One interpreter for every layer
//! type, so CaffeNet, SqueezeNet, an imported prototxt and every surgery
//! variant share one code path.
//!
//! Every blob is a rank-4 tensor N × C × H × W; an inner product's output is
//! N × C × 1 × 1 (Caffe's N × C with two unit axes), so one tensor type flows
//! through the whole network. Parameters are kept flat (rank 1) and reshaped
//! at use: the solver then treats all of them alike.

use super::spec::{LayerKind, NetSpec, PoolMethod, Shape, SpecError};
use super::weights::{Blob, Weights, WeightsError};
use burn::prelude::*;
use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::TensorData;
use rand::Rng;
use std::collections::HashMap;

/// Parameter tensors per layer (empty for layers without parameters).
pub type Params = Vec<Vec<Tensor<1>>>;

/// Whether a forward pass trains (dropout on, masks drawn from `rng`) or tests.
pub enum Mode<'a> {
    Test,
    Train {
        rng: &'a mut rand_chacha::ChaCha8Rng,
        /// Some: BatchNorm normalises by the batch's own mean and variance,
        /// and records them here (to update its running averages); None:
        /// by its stored statistics, as at test time.
        batch_stats: Option<&'a mut Vec<BatchStats>>,
    },
}

impl<'a> Mode<'a> {
    /// Training with BatchNorm's stored statistics.
    pub fn train(rng: &'a mut rand_chacha::ChaCha8Rng) -> Self {
        Mode::Train { rng, batch_stats: None }
    }
}

/// One BatchNorm layer's statistics over a training batch (per channel, over
/// images and positions; the variance biased, as used to normalise).
#[derive(Debug, Clone)]
pub struct BatchStats {
    pub layer: usize,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    /// Values per channel the statistics were taken over (N·H·W).
    pub count: usize,
}

/// A runnable network.
#[derive(Debug, Clone)]
pub struct Net {
    pub spec: NetSpec,
    pub params: Params,
    param_shapes: Vec<Vec<Shape>>,
    /// For each blob, the index of the last layer that reads it.
    last_read: HashMap<String, usize>,
    /// For each layer, how many layers run from it as one step: 2 for a
    /// convolution and the in-place ReLU after it, up to 3 for a BatchNorm,
    /// Scale and ReLU in place (one per-channel affine pass), 0 for a layer
    /// inside another's step, 1 otherwise.
    step_len: Vec<usize>,
    /// For a step that is two convolutions of one input and their
    /// concatenation (a Fire module's expand layers): the second convolution.
    pair_second: Vec<Option<usize>>,
    /// Whether deepsent's CPU kernels run the layers, else burn's own
    /// operations ([`super::kernels::run_on`]).
    own_kernels: bool,
    device: Device,
}

impl Net {
    /// Builds the network; `weights` must match the spec (see [`Weights::conform`]).
    pub fn new(spec: NetSpec, weights: &Weights, device: &Device) -> Result<Net, WeightsError> {
        let param_shapes = spec.param_shapes()?;
        // Copy the weights (hundreds of MB for CaffeNet) only when legacy
        // shapes need conforming; parameters are stored flat either way.
        let conformed;
        let weights = if weights.matches(&spec, &param_shapes) {
            weights
        } else {
            let mut w = weights.clone();
            w.conform(&spec, "the weights")?;
            conformed = w;
            &conformed
        };
        let params = spec
            .layers
            .iter()
            .zip(&param_shapes)
            .map(|(layer, shapes)| {
                if shapes.is_empty() {
                    return Vec::new();
                }
                weights.layers[&layer.name]
                    .iter()
                    .map(|b| Tensor::<1>::from_data(TensorData::new(b.data.clone(), [b.len()]), device))
                    .collect()
            })
            .collect();
        let mut last_read = HashMap::new();
        for (i, l) in spec.layers.iter().enumerate() {
            for b in &l.bottoms {
                last_read.insert(b.clone(), i);
            }
        }
        let own_kernels = super::kernels::run_on(device);
        let mut step_len = vec![1; spec.layers.len()];
        let mut pair_second = vec![None; spec.layers.len()];
        let mut i = 0;
        while i < spec.layers.len() {
            let pair = own_kernels.then(|| convolution_pair(&spec, i)).flatten();
            let len = pair.map_or_else(|| fused_len(&spec, i), |(_, len)| len);
            pair_second[i] = pair.map(|(second, _)| second);
            step_len[i] = len;
            step_len[i + 1..i + len].fill(0);
            i += len;
        }
        Ok(Net { spec, params, param_shapes, last_read, step_len, pair_second, own_kernels, device: device.clone() })
    }

    /// Whether layer `index` runs inside the step of a layer before it.
    pub fn fused_into_previous(&self, index: usize) -> bool {
        self.step_len[index] == 0
    }

    /// The layers that run as one step from layer `index` (empty inside a step).
    pub fn step(&self, index: usize) -> std::ops::Range<usize> {
        index..index + self.step_len[index]
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn param_shapes(&self) -> &[Vec<Shape>] {
        &self.param_shapes
    }

    /// The parameters as Caffe-layout blobs, by layer name.
    pub fn weights(&self) -> Weights {
        self.params_as_weights(&self.params)
    }

    /// Any parameter-shaped tensors (the parameters, momentum buffers …) as blobs.
    pub fn params_as_weights(&self, params: &Params) -> Weights {
        let mut w = Weights::default();
        for ((layer, tensors), shapes) in self.spec.layers.iter().zip(params).zip(&self.param_shapes) {
            if tensors.is_empty() {
                continue;
            }
            let blobs = tensors
                .iter()
                .zip(shapes)
                .map(|(t, s)| Blob::new(s.clone(), to_f32s(t)))
                .collect();
            w.layers.insert(layer.name.clone(), blobs);
        }
        w
    }

    /// The net's own parameters on the autodiff backend, not tracked: a pass
    /// through them records what a blob's gradient needs, not theirs.
    pub fn untracked_autodiff_params(&self) -> Params {
        self.params.iter().map(|b| b.iter().map(|t| t.clone().autodiff()).collect()).collect()
    }

    /// Blobs back to parameter-shaped tensors on this net's device.
    pub fn weights_as_params(&self, weights: &Weights) -> Result<Params, WeightsError> {
        Ok(Net::new(self.spec.clone(), weights, &self.device)?.params)
    }

    /// A batch tensor from views laid out image after image (C × H × W each).
    pub fn input(&self, views: Vec<f32>, device: &Device) -> Tensor<4> {
        let i = &self.spec.input;
        let n = views.len() / (i.channels * i.height * i.width);
        Tensor::from_data(TensorData::new(views, [n, i.channels, i.height, i.width]), device)
    }

    /// Runs the network on its own parameters in test mode and returns the
    /// output blob (the last layer's top).
    pub fn predict(&self, input: Tensor<4>) -> Tensor<4> {
        let out = self.spec.output_blob().to_string();
        let mut blobs = self.forward_with(&self.params, input, &mut Mode::Test, &[out.as_str()]);
        blobs.remove(&out).expect("the output blob is computed")
    }

    /// The first layer, in the network's order, whose output holds a NaN or
    /// an infinity for `input`: where finite weights overflowed.
    pub fn first_non_finite(&self, input: Tensor<4>) -> Option<String> {
        let tops: Vec<&str> = self.spec.layers.iter().flat_map(|l| l.tops.iter().map(String::as_str)).collect();
        let blobs = self.blobs(input, &tops).ok()?;
        let bad = |top: &String| blobs.get(top).is_some_and(|b| to_f32s(b).iter().any(|v| !v.is_finite()));
        self.spec.layers.iter().find(|l| l.tops.iter().any(bad)).map(|l| l.name.clone())
    }

    /// Runs the network in test mode and returns the named blobs, each as it
    /// is after the whole forward pass (as Caffe's `net.blobs[name]`).
    pub fn blobs(&self, input: Tensor<4>, wanted: &[&str]) -> Result<HashMap<String, Tensor<4>>, SpecError> {
        let known = self.spec.blob_names();
        for w in wanted {
            if !known.iter().any(|k| k == w) && *w != self.spec.input.blob {
                return Err(SpecError::UnknownLayer(w.to_string()));
            }
        }
        Ok(self.forward_with(&self.params, input, &mut Mode::Test, wanted))
    }

    /// The forward pass with the given parameters (the net's own, or tracked
    /// copies for training). Blobs nobody reads any more are dropped as soon
    /// as possible; `wanted` ones are kept and returned. Layers after the
    /// last write of a wanted blob are not run (a probe of conv1 costs conv1).
    pub fn forward_with(&self, params: &Params, input: Tensor<4>, mode: &mut Mode, wanted: &[&str]) -> HashMap<String, Tensor<4>> {
        let blobs = HashMap::from([(self.spec.input.blob.clone(), input)]);
        self.forward_from(params, blobs, 0, mode, wanted)
    }

    /// Where a forward pass may start after blob `blob` is final: the layer
    /// after its last writer, with the blobs written before and read from
    /// there on (skip connections), which the caller must supply. None when
    /// that layer runs inside a fused step (a Fire pair's interior blob).
    pub fn cut_after(&self, blob: &str) -> Option<(usize, Vec<String>)> {
        let start = if blob == self.spec.input.blob { 0 } else { self.spec.layers.iter().rposition(|l| l.tops.iter().any(|t| t == blob))? + 1 };
        if start < self.spec.layers.len() && self.fused_into_previous(start) {
            return None;
        }
        let mut needed: Vec<String> = Vec::new();
        let written_before = |b: &String| *b == self.spec.input.blob || self.spec.layers[..start].iter().any(|l| l.tops.contains(b));
        for (j, l) in self.spec.layers.iter().enumerate().skip(start) {
            for b in &l.bottoms {
                // Read before anything from `start` on rewrites it.
                let rewritten = self.spec.layers[start..j].iter().any(|w| w.tops.contains(b));
                if !rewritten && written_before(b) && !needed.contains(b) {
                    needed.push(b.clone());
                }
            }
        }
        Some((start, needed))
    }

    /// The forward pass from layer `start` (a step's first layer), given
    /// the blobs it reads that were written before it (see [`Net::cut_after`]).
    pub fn forward_from(&self, params: &Params, mut blobs: HashMap<String, Tensor<4>>, start: usize, mode: &mut Mode, wanted: &[&str]) -> HashMap<String, Tensor<4>> {
        let end = self.spec.layers.iter().rposition(|l| l.tops.iter().any(|t| wanted.contains(&t.as_str()))).map_or(0, |i| i + 1);
        for (i, layer) in self.spec.layers.iter().enumerate().take(end).skip(start) {
            if self.fused_into_previous(i) {
                continue;
            }
            let step = self.step(i);
            let inputs: Vec<Tensor<4>> = layer
                .bottoms
                .iter()
                .map(|b| {
                    // Last read by this step (a convolution pair reads its input twice).
                    let last = self.last_read.get(b).is_some_and(|r| step.contains(r)) && !wanted.contains(&b.as_str());
                    if last {
                        blobs.remove(b).expect("spec wiring was checked")
                    } else {
                        blobs[b].clone()
                    }
                })
                .collect();
            let last = &self.spec.layers[step.end - 1];
            let interior_wanted = self.pair_second[i].is_some() && step.clone().any(|l| l + 1 < step.end && wanted.contains(&self.spec.layers[l].tops[0].as_str()));
            let out = if interior_wanted {
                // A wanted blob inside a fused pair: run its layers one by one.
                let (a, b) = self.convolution_pair_apart(i, params, inputs.into_iter().next().expect("one input"));
                blobs.insert(layer.tops[0].clone(), a.clone());
                let second = &self.spec.layers[self.pair_second[i].expect("a pair")];
                blobs.insert(second.tops[0].clone(), b.clone());
                Tensor::cat(vec![a, b], 1)
            } else {
                self.step_forward(i, params, inputs, mode)
            };
            blobs.insert(last.tops[0].clone(), out);
        }
        blobs.retain(|k, _| wanted.contains(&k.as_str()));
        blobs
    }

    /// Runs the step starting at layer `index` (see [`Net::step`]) on its
    /// inputs, with the parameters of every layer (the profiler times steps
    /// one by one).
    pub fn step_forward(&self, index: usize, all_params: &Params, mut inputs: Vec<Tensor<4>>, mode: &mut Mode) -> Tensor<4> {
        let params = &all_params[index][..];
        let layer = &self.spec.layers[index];
        let relu_max = self.step_relu(index);
        let per_channel = |t: &Tensor<1>| -> Tensor<4> {
            let c = t.dims()[0];
            t.clone().reshape([1, c, 1, 1])
        };
        // `remove`, not `swap_remove`: the order of the rest is the channel order of a Concat and the order of an Eltwise's coefficients.
        let x = inputs.remove(0);
        if let Some(second) = self.pair_second[index] {
            return super::kernels::conv2d_pair(x, self.convolution_operands(index, all_params), self.convolution_operands(second, all_params), relu_max);
        }
        match &layer.kind {
            LayerKind::Convolution { .. } => {
                let (w, b, options) = self.convolution_operands(index, all_params);
                if !self.own_kernels {
                    clipped_relu(conv2d(x, w, b, options), relu_max)
                } else {
                    super::kernels::conv2d(x, w, b, options, relu_max)
                }
            }
            LayerKind::InnerProduct { num_output, .. } => {
                let [n, c, h, w] = x.dims();
                let weight = params[0].clone().reshape([*num_output, c * h * w]);
                let x = x.reshape([n, c * h * w]);
                let y = if !self.own_kernels {
                    let y = x.matmul(weight.transpose());
                    match params.get(1) {
                        Some(b) => y + b.clone().reshape([1, *num_output]),
                        None => y,
                    }
                } else {
                    super::kernels::inner_product(x, weight, params.get(1).cloned())
                };
                y.reshape([n, *num_output, 1, 1])
            }
            LayerKind::ReLU { negative_slope, max } => {
                let y = if *negative_slope != 0.0 { activation::leaky_relu(x, *negative_slope as f64) } else { activation::relu(x) };
                match max {
                    Some(m) => y.clamp_max(*m),
                    None => y,
                }
            }
            LayerKind::Pooling { method, kernel, stride, pad, global, ceil } => {
                if *global {
                    return match method {
                        PoolMethod::Ave => x.mean_dim(3).mean_dim(2),
                        PoolMethod::Max => x.max_dim(3).max_dim(2),
                    };
                }
                match method {
                    PoolMethod::Max if !self.own_kernels => max_pool2d(
                        x,
                        MaxPoolOptions::new(*kernel).with_stride(*stride).with_padding(*pad).with_ceil_mode(*ceil),
                    ),
                    PoolMethod::Max => super::kernels::max_pool2d(x, *kernel, *stride, *pad, *ceil),
                    // Caffe divides by the window clipped to the padded input:
                    // padding counts, the ceil overhang does not.
                    PoolMethod::Ave => avg_pool2d(
                        x,
                        AvgPoolOptions::new(*kernel)
                            .with_stride(*stride)
                            .with_padding(*pad)
                            .with_count_include_pad(true)
                            .with_ceil_mode(*ceil),
                    ),
                }
            }
            LayerKind::Lrn { local_size, alpha, beta, k } => {
                let params = super::kernels::Lrn { size: *local_size, alpha: *alpha, beta: *beta, k: *k };
                if !self.own_kernels {
                    lrn_in_burn(x, params)
                } else {
                    super::kernels::lrn(x, params)
                }
            }
            LayerKind::Dropout { ratio } => match mode {
                Mode::Test => x,
                Mode::Train { rng, .. } => {
                    // Caffe scales kept units by 1/(1−ratio) at training time.
                    let dims = x.dims();
                    let keep = 1.0 - ratio;
                    let mask: Vec<f32> = (0..dims.iter().product::<usize>())
                        .map(|_| if rng.gen::<f32>() < keep { 1.0 / keep } else { 0.0 })
                        .collect();
                    let mask = Tensor::<4>::from_data(TensorData::new(mask, dims), &x.device());
                    x * mask
                }
            },
            LayerKind::Concat { .. } => {
                let mut all = vec![x];
                all.extend(inputs);
                Tensor::cat(all, 1)
            }
            LayerKind::Softmax => activation::softmax(x, 1),
            LayerKind::BatchNorm { .. } | LayerKind::Scale { .. } => {
                // BatchNorm, Scale and ReLU as one map per channel:
                // y = act(a·x + b). BatchNorm's statistics are its stored
                // ones, or in training with batch statistics the batch's own
                // (then a and b depend on x, and the gradient flows through them).
                let batch = match mode {
                    Mode::Train { batch_stats: Some(stats), .. } if matches!(layer.kind, LayerKind::BatchNorm { .. }) => {
                        let [n, c, h, w] = x.dims();
                        let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3);
                        let var = (x.clone() - mean.clone()).powi_scalar(2).mean_dim(0).mean_dim(2).mean_dim(3).reshape([c]);
                        let mean = mean.reshape([c]);
                        stats.push(BatchStats { layer: index, mean: to_f32s(&mean), var: to_f32s(&var), count: n * h * w });
                        Some((mean, var))
                    }
                    _ => None,
                };
                let (a, b) = self.channel_affine(index, all_params, batch);
                if !self.own_kernels {
                    clipped_relu(x * per_channel(&a) + per_channel(&b), relu_max)
                } else {
                    super::kernels::channel_affine(x, a, b, relu_max)
                }
            }
            LayerKind::Eltwise { coeffs } => {
                let coeff = |i: usize| coeffs.get(i).copied().unwrap_or(1.0);
                let mut y = if coeff(0) == 1.0 { x } else { x.mul_scalar(coeff(0)) };
                for (i, other) in inputs.into_iter().enumerate() {
                    y = y + if coeff(i + 1) == 1.0 { other } else { other.mul_scalar(coeff(i + 1)) };
                }
                y
            }
            LayerKind::Flatten => {
                let [n, c, h, w] = x.dims();
                x.reshape([n, c * h * w, 1, 1])
            }
        }
    }
}

impl Net {
    /// The clip of the ReLU that ends the step at `index` (∞ for a plain
    /// one; for a convolution pair, the ReLU after its first convolution, the
    /// second's being the same), or None.
    fn step_relu(&self, index: usize) -> Option<f32> {
        let relu = |l: usize| match &self.spec.layers.get(l)?.kind {
            LayerKind::ReLU { max, .. } => Some(max.unwrap_or(f32::INFINITY)),
            _ => None,
        };
        match self.pair_second[index] {
            Some(_) => relu(index + 1),
            None if self.step_len[index] > 1 => relu(index + self.step_len[index] - 1),
            None => None,
        }
    }

    /// A convolution layer's weight (O × C/groups × KH × KW), bias and options.
    fn convolution_operands(&self, index: usize, params: &Params) -> (Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) {
        let LayerKind::Convolution { stride, pad, dilation, group, .. } = &self.spec.layers[index].kind else { unreachable!("called on convolution layers") };
        let s = &self.param_shapes[index][0];
        let w = params[index][0].clone().reshape([s[0], s[1], s[2], s[3]]);
        (w, params[index].get(1).cloned(), ConvOptions::new_with_padding(*stride, *pad, *dilation, *group))
    }

    /// The two convolutions of the pair at `index`, each with its ReLU, apart.
    fn convolution_pair_apart(&self, index: usize, params: &Params, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let relu_max = self.step_relu(index);
        let run = |l: usize, x: Tensor<4>| {
            let (w, b, options) = self.convolution_operands(l, params);
            super::kernels::conv2d(x, w, b, options, relu_max)
        };
        (run(index, x.clone()), run(self.pair_second[index].expect("a pair"), x))
    }

    /// The per-channel (a, b) of the BatchNorm and/or Scale step at `index`:
    /// BatchNorm gives (1/σ, −μ/σ), Scale (γ, β), and one after the other
    /// (γ/σ, β − γμ/σ). Built from the parameters with tensor operations, so
    /// the gradients of a and b reach γ and β. `batch`: the (μ, σ²) to use
    /// instead of BatchNorm's stored ones.
    fn channel_affine(&self, index: usize, params: &Params, batch: Option<(Tensor<1>, Tensor<1>)>) -> (Tensor<1>, Tensor<1>) {
        let mut batch = batch;
        let mut a: Option<Tensor<1>> = None;
        let mut b: Option<Tensor<1>> = None;
        for l in self.step(index) {
            let p = &params[l];
            match &self.spec.layers[l].kind {
                LayerKind::BatchNorm { eps } => {
                    let (mean, var) = match batch.take() {
                        Some(stats) => stats,
                        None => {
                            // Caffe stores running sums: mean and variance are divided by
                            // the third blob, and a factor of 0 zeroes both (as Caffe does).
                            let factor: f32 = to_f32s(&p[2])[0];
                            let s = if factor == 0.0 { 0.0 } else { 1.0 / factor };
                            (p[0].clone().mul_scalar(s), p[1].clone().mul_scalar(s))
                        }
                    };
                    let inv_std = var.add_scalar(*eps).sqrt().recip();
                    b = Some(mean.neg() * inv_std.clone());
                    a = Some(inv_std);
                }
                LayerKind::Scale { bias } => {
                    let gamma = p[0].clone();
                    let beta = if *bias { Some(p[1].clone()) } else { None };
                    b = match (b, beta) {
                        (Some(b), Some(beta)) => Some(b * gamma.clone() + beta),
                        (Some(b), None) => Some(b * gamma.clone()),
                        (None, beta) => beta,
                    };
                    a = Some(match a {
                        Some(a) => a * gamma,
                        None => gamma,
                    });
                }
                _ => {}
            }
        }
        let a = a.expect("a BatchNorm or Scale step");
        let b = b.unwrap_or_else(|| a.zeros_like());
        (a, b)
    }
}

/// How many layers from `index` run as one step: a convolution and an
/// in-place, non-leaky ReLU on its output (2); a BatchNorm, then in place a
/// Scale and/or such a ReLU, or a Scale and such a ReLU (up to 3); 1 else.
/// In place, so no layer can see a value between the fused layers.
/// Two convolutions of one input, each optionally followed by the same
/// ReLU in place, then a Concat of exactly their two outputs, which nothing
/// else reads (a Fire module's expand layers): `(second convolution, layers
/// in the step)`. They run as one step whose convolutions write straight into
/// the concatenated blob ([`super::kernels::conv2d_pair`]).
fn convolution_pair(spec: &NetSpec, index: usize) -> Option<(usize, usize)> {
    let layers = &spec.layers;
    let conv = |l: usize| layers.get(l).filter(|c| matches!(c.kind, LayerKind::Convolution { group: 1, .. }) && c.bottoms.len() == 1 && c.tops.len() == 1);
    let first = conv(index)?;
    let first_relu = relu_in_place(spec, index + 1, &first.tops[0]);
    let second_at = index + 1 + usize::from(first_relu.is_some());
    let second = conv(second_at).filter(|c| c.bottoms == first.bottoms && c.tops[0] != first.tops[0])?;
    let second_relu = relu_in_place(spec, second_at + 1, &second.tops[0]);
    if first_relu != second_relu {
        return None;
    }
    let concat_at = second_at + 1 + usize::from(second_relu.is_some());
    let concat = layers.get(concat_at).filter(|c| matches!(c.kind, LayerKind::Concat { axis: 1 }) && c.bottoms == [first.tops[0].clone(), second.tops[0].clone()])?;
    // Nothing outside the step reads the two convolutions' outputs.
    let outside = |blob: &String| layers.iter().enumerate().any(|(l, other)| !(index..=concat_at).contains(&l) && other.bottoms.contains(blob));
    if outside(&first.tops[0]) || outside(&second.tops[0]) || concat.tops.len() != 1 {
        return None;
    }
    Some((second_at, concat_at + 1 - index))
}

/// Layer `j`, when it works in place on `blob` (one bottom and one top, both `blob`).
fn in_place<'s>(spec: &'s NetSpec, j: usize, blob: &str) -> Option<&'s super::spec::LayerSpec> {
    spec.layers.get(j).filter(|l| l.bottoms.len() == 1 && l.bottoms[0] == blob && l.tops.len() == 1 && l.tops[0] == blob)
}

/// The clip (None: plain) of layer `j` when it is a ReLU (no leak) in place on `blob`.
fn relu_in_place(spec: &NetSpec, j: usize, blob: &str) -> Option<Option<f32>> {
    in_place(spec, j, blob).and_then(|l| match l.kind {
        LayerKind::ReLU { negative_slope, max } if negative_slope == 0.0 => Some(max),
        _ => None,
    })
}

fn fused_len(spec: &NetSpec, index: usize) -> usize {
    let first = &spec.layers[index];
    let blob = &first.tops[0];
    let mut len = 1;
    match first.kind {
        LayerKind::Convolution { .. } => {}
        LayerKind::BatchNorm { .. } => {
            if in_place(spec, index + 1, blob).is_some_and(|l| matches!(l.kind, LayerKind::Scale { .. })) {
                len += 1;
            }
        }
        LayerKind::Scale { .. } => {}
        _ => return 1,
    }
    if relu_in_place(spec, index + len, blob).is_some() {
        len += 1;
    }
    len
}

/// The ReLU that ends a fused step, on burn's operations: clipped at
/// `relu_max` (∞: plain), or none.
fn clipped_relu(y: Tensor<4>, relu_max: Option<f32>) -> Tensor<4> {
    match relu_max {
        Some(max) if max.is_finite() => activation::relu(y).clamp_max(max),
        Some(_) => activation::relu(y),
        None => y,
    }
}

/// LRN in burn's tensor operations, its gradient by autodiff.
fn lrn_in_burn(x: Tensor<4>, p: super::kernels::Lrn) -> Tensor<4> {
    // Mean of x² over a window of channels, as an average pool over the
    // channel axis (zero padding counted, as Caffe's sum is over existing
    // channels and divides by local_size).
    let [n, c, h, w] = x.dims();
    let sq = (x.clone() * x.clone()).reshape([n, 1, c, h * w]);
    let half = (p.size - 1) / 2;
    let mean = avg_pool2d(sq, AvgPoolOptions::new([p.size, 1]).with_stride([1, 1]).with_padding([half, 0]).with_count_include_pad(true)).reshape([n, c, h, w]);
    let scale = mean.mul_scalar(p.alpha).add_scalar(p.k);
    x / scale.powf_scalar(p.beta)
}


/// Softmax probabilities of an N × K × 1 × 1 output, as rows.
pub fn rows(t: Tensor<4>) -> Vec<Vec<f32>> {
    let [n, k, h, w] = t.dims();
    let data = to_f32s(&t);
    let per = k * h * w;
    (0..n).map(|i| data[i * per..(i + 1) * per].to_vec()).collect()
}

/// A tensor's values, read back to the host.
pub fn to_f32s<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.to_data().convert::<f32>().try_to_vec::<f32>().expect("converted to f32")
}

/// Moves each BatchNorm's stored statistics toward a batch's: running ←
/// (1 − momentum)·running + momentum·batch, the variance made unbiased
/// (×m/(m−1)), kept in Caffe's form (sums scaled by the third blob).
pub fn update_running_stats(params: &mut Params, stats: &[BatchStats], momentum: f32) {
    for st in stats {
        let p = &mut params[st.layer];
        let mut factor = to_f32s(&p[2])[0];
        let (mut mean, mut var) = (to_f32s(&p[0]), to_f32s(&p[1]));
        if factor == 0.0 {
            // No statistics yet (Caffe's zero factor): start from this batch.
            factor = 1.0;
            mean.iter_mut().for_each(|m| *m = 0.0);
            var.iter_mut().for_each(|v| *v = 0.0);
        }
        let unbias = st.count as f32 / (st.count.max(2) - 1) as f32;
        for (m, &bm) in mean.iter_mut().zip(&st.mean) {
            *m = (1.0 - momentum) * *m + momentum * bm * factor;
        }
        for (v, &bv) in var.iter_mut().zip(&st.var) {
            *v = (1.0 - momentum) * *v + momentum * bv * unbias * factor;
        }
        let device = p[0].device();
        let c = mean.len();
        p[0] = Tensor::from_data(TensorData::new(mean, [c]), &device);
        p[1] = Tensor::from_data(TensorData::new(var, [c]), &device);
        p[2] = Tensor::from_data(TensorData::new(vec![factor], [1]), &device);
    }
}
