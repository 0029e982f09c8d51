//! Caffe's SGD solver, exactly: momentum without dampening, L2 weight decay
//! added to the gradient, per-blob `lr_mult` / `decay_mult`, and the `step`
//! learning-rate policy. Written by hand rather than with burn's optimiser so
//! that every term is Caffe's (burn's momentum dampens by default, and its
//! parameter groups do not carry Caffe's per-blob decay multipliers).
//!
//! For each parameter blob, with `rate = lr · lr_mult · layer_rate` and
//! `decay = wd · decay_mult`:
//! `history ← momentum · history + rate · (grad + decay · (w − anchor))`, then
//! `w ← w − history`, where `anchor` is 0 (Caffe's weight decay) or, with
//! `decay_to: pretrained`, the pretrained weights (L2-SP).
//!
//! The paper's recipe is the default. The other settings are what current
//! fine-tuning practice adds for small data, as options of this one solver:
//! a warm-up and a cosine schedule, a learning rate that falls layer by layer
//! from the top (`layer_decay`), frozen bottom layers, L2-SP, weight averaging
//! over the last epochs (SWA), and stronger augmentation.

use crate::model::kernels::{self, sgd};
use crate::model::net::Params;
use crate::model::NetSpec;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The solver's settings; the defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverSettings {
    /// Learning rate at iteration 0 (the paper: 0.001).
    pub base_lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// The rate is multiplied by `gamma` every `step_epochs` epochs (0.1 every 6).
    pub gamma: f64,
    pub step_epochs: f64,
    /// Length of training in epochs (65 ≈ the authors' 180 iterations × 256 / 704).
    pub epochs: f64,
    /// Images per iteration (Caffe's batch × iter_size).
    pub batch: usize,
    /// Images per forward/backward pass; gradients of batch / micro_batch
    /// passes are averaged (Caffe's iter_size), so memory stays small.
    pub micro_batch: usize,
    /// How the rate falls after the warm-up: Caffe's steps or a cosine to 0.
    #[serde(default)]
    pub schedule: Schedule,
    /// Epochs over which the rate rises linearly from 0 to `base_lr`.
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Each weight layer's rate is `layer_decay^d`, d = its depth below the
    /// top weight layer (1: every layer at the same rate).
    #[serde(default = "one")]
    pub layer_decay: f64,
    /// The bottom weight layers (convolutions and inner products, counted
    /// from the input) that keep their weights.
    #[serde(default)]
    pub freeze_layers: usize,
    /// What weight decay pulls toward: zero (Caffe) or the pretrained weights (L2-SP).
    #[serde(default)]
    pub decay_to: DecayTarget,
    /// Average the weights at the end of each of the last this many epochs
    /// and keep the average (stochastic weight averaging); 0: the last weights.
    #[serde(default)]
    pub swa_epochs: f64,
    /// The training views: the paper's (random crop, mirror) or stronger.
    #[serde(default)]
    pub augment: Augment,
    /// BatchNorm in training: its stored statistics, or the batch's own.
    #[serde(default)]
    pub batchnorm: BatchNormMode,
    /// The training targets' share spread over all classes (label
    /// smoothing): a fitted head's loss then never saturates, so the layers
    /// below it keep a gradient. 0: the one-hot targets (Caffe's).
    #[serde(default)]
    pub label_smoothing: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchNormMode {
    /// Normalise by the stored (ImageNet) statistics, which stay as they are.
    #[default]
    Frozen,
    /// Normalise each micro-batch by its own mean and variance, and move the
    /// stored statistics toward them (momentum 0.1) for testing.
    Batch,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Multiply by `gamma` every `step_epochs` (Caffe's `step`, the paper's).
    #[default]
    Step,
    /// Half a cosine from `base_lr` to 0 over the iterations after the warm-up.
    Cosine,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecayTarget {
    /// Caffe's weight decay, toward zero.
    #[default]
    Zero,
    /// Toward the pretrained weights (L2-SP, Li et al. 2018); layers new to
    /// the network still decay toward zero.
    Pretrained,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    /// Caffe's: a random crop of the stored image and a mirror.
    #[default]
    Paper,
    /// A random-resized crop (25–100 % of the area, aspect 3/4–4/3) with a
    /// mirror, then colour jitter (brightness, contrast, saturation ± 40 %).
    Strong,
}

impl Default for SolverSettings {
    fn default() -> Self {
        SolverSettings {
            base_lr: 0.001,
            momentum: 0.9,
            weight_decay: 5e-4,
            gamma: 0.1,
            step_epochs: 6.0,
            epochs: 65.0,
            batch: 256,
            micro_batch: 32,
            schedule: Schedule::Step,
            warmup_epochs: 0.0,
            layer_decay: 1.0,
            freeze_layers: 0,
            decay_to: DecayTarget::Zero,
            swa_epochs: 0.0,
            augment: Augment::Paper,
            batchnorm: BatchNormMode::Frozen,
            label_smoothing: 0.0,
        }
    }
}

impl SolverSettings {
    /// Iterations for `n_train` images: epochs × n / batch, rounded.
    pub fn iterations(&self, n_train: usize) -> usize {
        ((self.epochs * n_train as f64 / self.batch as f64).round() as usize).max(1)
    }

    /// Iterations between learning-rate steps (6 epochs of 704 at batch 256 ≈ 17).
    pub fn step_size(&self, n_train: usize) -> usize {
        ((self.step_epochs * n_train as f64 / self.batch as f64).round() as usize).max(1)
    }

    /// Iterations of the linear warm-up.
    pub fn warmup_iterations(&self, n_train: usize) -> usize {
        (self.warmup_epochs * n_train as f64 / self.batch as f64).round() as usize
    }

    /// The rate at `iteration`: the warm-up, then the schedule. Caffe's `step`
    /// policy is base_lr · gamma^⌊iter / step_size⌋.
    pub fn lr_at(&self, iteration: usize, n_train: usize) -> f64 {
        let warmup = self.warmup_iterations(n_train);
        if iteration < warmup {
            return self.base_lr * (iteration + 1) as f64 / warmup as f64;
        }
        match self.schedule {
            Schedule::Step => self.base_lr * self.gamma.powi((iteration / self.step_size(n_train)) as i32),
            Schedule::Cosine => {
                let span = self.iterations(n_train).saturating_sub(warmup).max(1) as f64;
                let t = (iteration - warmup) as f64 / span;
                self.base_lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// The iterations at whose end the weights join the average (SWA): the
    /// last iteration of each of the last `swa_epochs` epochs. Empty: no averaging.
    pub fn swa_points(&self, n_train: usize) -> Vec<usize> {
        let iterations = self.iterations(n_train);
        let epochs = self.swa_epochs.round() as usize;
        let epoch_of = |i: usize| i * self.batch / n_train;
        let ends: Vec<usize> = (1..=iterations).filter(|&i| i == iterations || epoch_of(i) > epoch_of(i - 1)).collect();
        ends[ends.len().saturating_sub(epochs)..].to_vec()
    }

    /// Each layer's rate multiplier (besides its own `lr_mult`): 0 for the
    /// frozen bottom layers, `layer_decay^depth` for the rest, where depth
    /// counts weight layers (convolutions, inner products) down from the top.
    /// Other learnable layers (Scale) share the rate of the weight layer before them.
    pub fn layer_rates(&self, spec: &NetSpec) -> Vec<f64> {
        use crate::model::LayerKind;
        let is_weight = |k: &LayerKind| matches!(k, LayerKind::Convolution { .. } | LayerKind::InnerProduct { .. });
        let total = spec.layers.iter().filter(|l| is_weight(&l.kind)).count();
        let mut seen = 0usize;
        spec.layers
            .iter()
            .map(|l| {
                if is_weight(&l.kind) {
                    seen += 1;
                }
                // Layers before the first weight layer (no weights of their own) count as the first.
                let index = seen.max(1);
                if index <= self.freeze_layers {
                    0.0
                } else {
                    self.layer_decay.powi((total.saturating_sub(index)) as i32)
                }
            })
            .collect()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.micro_batch == 0 || self.batch % self.micro_batch != 0 {
            return Err(format!("batch {} must be a multiple of micro-batch {}", self.batch, self.micro_batch));
        }
        if !(self.base_lr.is_finite() && self.base_lr >= 0.0) {
            return Err(format!("base_lr {} must be a finite rate ≥ 0", self.base_lr));
        }
        if !(self.layer_decay > 0.0 && self.layer_decay <= 1.0) {
            return Err(format!("layer_decay {} must be in (0, 1]", self.layer_decay));
        }
        if self.warmup_epochs < 0.0 || self.swa_epochs < 0.0 || self.epochs <= 0.0 {
            return Err("epochs must be > 0, warmup_epochs and swa_epochs ≥ 0".into());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(format!("label_smoothing {} must be in [0, 1)", self.label_smoothing));
        }
        Ok(())
    }
}

/// Solver state: one momentum buffer per parameter blob, and what weight
/// decay pulls each layer toward.
#[derive(Debug, Clone)]
pub struct Sgd {
    pub history: Params,
    /// Per layer: the weights decay pulls toward (L2-SP), or None for zero.
    pub anchor: Vec<Option<Vec<Tensor<1>>>>,
    /// Per layer: the rate multiplier of `SolverSettings::layer_rates`.
    pub layer_rates: Vec<f64>,
}

impl Sgd {
    /// Caffe's solver: every layer at its own `lr_mult`, decay toward zero.
    pub fn new(params: &Params) -> Self {
        Sgd {
            history: params.iter().map(|blobs| blobs.iter().map(|t| t.zeros_like()).collect()).collect(),
            anchor: vec![None; params.len()],
            layer_rates: vec![1.0; params.len()],
        }
    }

    /// The solver `s` describes for a network that starts at `params`: layer
    /// rates from `s`, and with `decay_to: pretrained` the starting weights
    /// as the anchor of every layer not in `new_layers`.
    pub fn for_settings(spec: &NetSpec, params: &Params, s: &SolverSettings, new_layers: &[String]) -> Self {
        let mut sgd = Sgd::new(params);
        sgd.layer_rates = s.layer_rates(spec);
        if s.decay_to == DecayTarget::Pretrained {
            sgd.anchor = spec.layers.iter().zip(params).map(|(l, p)| (!new_layers.contains(&l.name)).then(|| p.clone())).collect();
        }
        sgd
    }

    /// One update of `params` with `grads` (None where a blob got no gradient,
    /// e.g. frozen layers) at learning rate `lr`.
    pub fn step(&mut self, spec: &NetSpec, params: &mut Params, grads: &[Vec<Option<Tensor<1>>>], lr: f64, s: &SolverSettings) {
        for (l, layer) in spec.layers.iter().enumerate() {
            // Owned, so that the update runs in place when nothing else holds them.
            let weights = std::mem::take(&mut params[l]);
            let history = std::mem::take(&mut self.history[l]);
            for (b, (w, h)) in weights.into_iter().zip(history).enumerate() {
                let (w, h) = match &grads[l][b] {
                    None => (w, h),
                    Some(g) => {
                        let mult = layer.param_mult(b);
                        let update = sgd::Update {
                            rate: (lr * mult.lr_mult as f64 * self.layer_rates[l]) as f32,
                            decay: (s.weight_decay * mult.decay_mult as f64) as f32,
                            momentum: s.momentum as f32,
                        };
                        let anchor = self.anchor[l].as_ref().map(|a| &a[b]);
                        kernels::sgd_step(w, h, g, anchor, update)
                    }
                };
                params[l].push(w);
                self.history[l].push(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_policy_matches_the_paper() {
        let s = SolverSettings::default();
        assert_eq!(s.iterations(704), 179); // 65 · 704 / 256 = 178.75
        assert_eq!(s.step_size(704), 17); // 6 · 704 / 256 = 16.5
        assert_eq!(s.lr_at(0, 704), 0.001);
        assert_eq!(s.lr_at(16, 704), 0.001);
        assert!((s.lr_at(17, 704) - 1e-4).abs() < 1e-12);
        assert!((s.lr_at(55, 704) - 1e-6).abs() < 1e-15); // 3 steps: after ~18 epochs, lr ≤ 1e-6
        assert!(SolverSettings { micro_batch: 30, ..s }.check().is_err());
    }

    #[test]
    fn warmup_then_cosine_by_hand() {
        // 100 images, batch 10: 10 iterations per epoch; 10 epochs = 100 iterations, 1 epoch of warm-up.
        let s = SolverSettings { base_lr: 0.1, batch: 10, micro_batch: 10, epochs: 10.0, warmup_epochs: 1.0, schedule: Schedule::Cosine, ..Default::default() };
        assert!((s.lr_at(0, 100) - 0.01).abs() < 1e-12);
        assert!((s.lr_at(9, 100) - 0.1).abs() < 1e-12);
        assert!((s.lr_at(10, 100) - 0.1).abs() < 1e-12); // cosine starts at the top
        assert!((s.lr_at(55, 100) - 0.05).abs() < 1e-12); // half-way through the 90 cosine iterations
        assert!(s.lr_at(99, 100) < 1e-3);
    }

    #[test]
    fn layer_rates_freeze_the_bottom_and_decay_from_the_top() {
        let spec = crate::model::caffe::prototxt::parse(
            r#"input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
            layer { name: "c1" type: "Convolution" bottom: "data" top: "c1" convolution_param { num_output: 2 kernel_size: 3 } }
            layer { name: "s1" type: "Scale" bottom: "c1" top: "c1" scale_param { bias_term: true } }
            layer { name: "r1" type: "ReLU" bottom: "c1" top: "c1" }
            layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2" convolution_param { num_output: 2 kernel_size: 3 } }
            layer { name: "fc" type: "InnerProduct" bottom: "c2" top: "fc" inner_product_param { num_output: 2 } }"#,
            "t",
        )
        .unwrap();
        let s = SolverSettings { layer_decay: 0.5, ..Default::default() };
        // Depths below the top weight layer: c1 2 (its Scale and ReLU too), c2 1, fc 0.
        assert_eq!(s.layer_rates(&spec), [0.25, 0.25, 0.25, 0.5, 1.0]);
        let frozen = SolverSettings { freeze_layers: 1, ..s };
        assert_eq!(frozen.layer_rates(&spec), [0.0, 0.0, 0.0, 0.5, 1.0]);
        assert_eq!(SolverSettings::default().layer_rates(&spec), [1.0; 5]);
    }

    #[test]
    fn swa_averages_the_ends_of_the_last_epochs() {
        let s = SolverSettings { batch: 10, micro_batch: 10, epochs: 5.0, swa_epochs: 2.0, ..Default::default() };
        assert_eq!(s.swa_points(100), [40, 50]);
        assert!(SolverSettings { swa_epochs: 0.0, ..s }.swa_points(100).is_empty());
    }
}
