//! Caffe's SGD solver, exactly: momentum without dampening, L2 weight decay
//! added to the gradient, per-blob `lr_mult` / `decay_mult`, and the `step`
//! learning-rate policy. Written by hand rather than with burn's optimiser so
//! that every term is Caffe's (burn's momentum dampens by default, and its
//! parameter groups do not carry Caffe's per-blob decay multipliers).
//!
//! For each parameter blob, with `rate = lr · lr_mult` and `decay = wd · decay_mult`:
//! `history ← momentum · history + rate · (grad + decay · w)`, then `w ← w − history`.

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
}

impl Default for SolverSettings {
    fn default() -> Self {
        SolverSettings { base_lr: 0.001, momentum: 0.9, weight_decay: 5e-4, gamma: 0.1, step_epochs: 6.0, epochs: 65.0, batch: 256, micro_batch: 32 }
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

    /// Caffe's `step` policy: base_lr · gamma^⌊iter / step_size⌋.
    pub fn lr_at(&self, iteration: usize, n_train: usize) -> f64 {
        self.base_lr * self.gamma.powi((iteration / self.step_size(n_train)) as i32)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.micro_batch == 0 || self.batch % self.micro_batch != 0 {
            return Err(format!("batch {} must be a multiple of micro-batch {}", self.batch, self.micro_batch));
        }
        Ok(())
    }
}

/// Solver state: one momentum buffer per parameter blob.
#[derive(Debug, Clone)]
pub struct Sgd {
    pub history: Params,
}

impl Sgd {
    pub fn new(params: &Params) -> Self {
        Sgd { history: params.iter().map(|blobs| blobs.iter().map(|t| t.zeros_like()).collect()).collect() }
    }

    /// One update of `params` with `grads` (None where a blob got no gradient,
    /// e.g. frozen layers) at learning rate `lr`.
    pub fn step(&mut self, spec: &NetSpec, params: &mut Params, grads: &[Vec<Option<Tensor<1>>>], lr: f64, s: &SolverSettings) {
        for (l, layer) in spec.layers.iter().enumerate() {
            for b in 0..params[l].len() {
                let Some(g) = &grads[l][b] else { continue };
                let mult = layer.param_mult(b);
                let rate = lr * mult.lr_mult as f64;
                let decay = s.weight_decay * mult.decay_mult as f64;
                let w = params[l][b].clone();
                let mut diff = g.clone();
                if decay != 0.0 {
                    diff = diff + w.clone().mul_scalar(decay);
                }
                let h = self.history[l][b].clone().mul_scalar(s.momentum) + diff.mul_scalar(rate);
                params[l][b] = w - h.clone();
                self.history[l][b] = h;
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
}
