//! Extremal perturbations (Fong, Patrick & Vedaldi 2019), in the deletion
//! variant of meaningful perturbations (Fong & Vedaldi 2017), with the masks
//! of all areas nested: one score per cell of a coarse grid ranks the cells,
//! the mask of area `a` deletes (to the mean colour, as the deletion test
//! does) the top `a` of them, and the scores are moved by gradient descent so
//! that the predicted class's probability falls as fast as it can over the
//! areas [`EXTREMAL_AREAS`]: the loss is that probability summed over them.
//! The map is the scores, cell by cell: the deletion order the network's
//! own gradients find.
//!
//! Fong et al. optimise one smooth mask per area and sum them; here the
//! masks are nested by construction, whole cells deleted as the deletion
//! test deletes pixels, and the gradient reaches the scores through the
//! hard masks as if each mask were its scores (the straight-through
//! estimator, Bengio et al. 2013). Smooth masks optimised alone reached low
//! probabilities by dimming most of the view a little, which deleting whole
//! pixels does not reproduce. On the first 8 test images of SqueezeNet's
//! fold 1 (deletion AUC over random): smooth masks per area 0.76, whole
//! cells per area 0.66, nested 0.71, CAM 0.81 — within the noise of 8
//! images; nested masks give one order, without ties between areas.
//!
//! This method searches for what the deletion test measures: a low score
//! says the search found an order the answer is sensitive to, not that the
//! map explains the answer better than one that was not fitted to the test.
//!
//! Written here rather than taken from a crate: no Rust crate implements
//! attribution methods, and the work is small once burn gives the input's
//! gradient.

use super::blocks::Upsample;
use super::{Grid, Mapper, NEGATIVE, POSITIVE};
use crate::model::net::{to_f32s, Mode, Params};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use std::collections::HashMap;

/// Cells a side of the ranking unless chosen otherwise (16 pixels at 227).
pub const EXTREMAL_CELLS: usize = 14;

/// Shares of the view the nested masks delete: the points of the deletion
/// curve the scores are fitted to.
pub const EXTREMAL_AREAS: [f32; 8] = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8];

/// Gradient steps: each a forward and backward pass of every view under
/// each area's mask.
pub const EXTREMAL_STEPS: usize = 40;

/// Adam's step on a score (the scores start at unit spread).
const LEARNING_RATE: f32 = 0.05;

/// Masked views per forward and backward pass.
const BATCH: usize = 32;

impl Mapper<'_> {
    /// Each view's scores (see the module's note), at the view's
    /// resolution, signed toward positive, with the unmasked views' log-odds.
    pub(super) fn extremal(&self, input: Tensor<4>) -> (Vec<Grid>, Vec<f32>) {
        let [n, c, h, w] = input.dims();
        let views = to_f32s(&input);
        let view_len = c * h * w;
        let whole = self.log_odds_of(input);
        // Each view's predicted class, as the sign of its log-odds.
        let signs: Vec<f32> = whole.iter().map(|&z| if z > 0.0 { 1.0 } else { -1.0 }).collect();
        let g = self.cells;
        let up = Upsample::blocks(g, h, w);
        let params = self.net.untracked_autodiff_params();
        let view = |v: usize| &views[v * view_len..(v + 1) * view_len];
        // Σ over `areas` of the gradient of the probability with each view's
        // mask of that area deleted, passed straight through to the scores.
        let score_gradient = |scores: &[f32], areas: &[f32]| {
            let copies: Vec<(usize, f32)> = (0..n).flat_map(|v| areas.iter().map(move |&a| (v, a))).collect();
            let mut grad = vec![0.0f32; scores.len()];
            for chunk in copies.chunks(BATCH) {
                let masks: Vec<Vec<f32>> = chunk.iter().map(|&(v, a)| top_cells(&scores[v * g * g..(v + 1) * g * g], a)).collect();
                let grads = self.deletion_gradients(&params, &up, &chunk.iter().map(|&(v, _)| view(v)).collect::<Vec<_>>(), &masks.iter().map(Vec::as_slice).collect::<Vec<_>>(), &chunk.iter().map(|&(v, _)| signs[v]).collect::<Vec<_>>());
                for (&(v, _), cells) in chunk.iter().zip(grads) {
                    grad[v * g * g..(v + 1) * g * g].iter_mut().zip(cells).for_each(|(s, c)| *s += c);
                }
            }
            grad
        };
        // The start: the first-order estimate of how much deleting each cell
        // lowers the probability (the gradient with nothing deleted), scaled
        // to unit spread.
        let mut scores: Vec<f32> = score_gradient(&vec![0.0; n * g * g], &[0.0])
            .chunks(g * g)
            .flat_map(|grad| {
                let spread = (grad.iter().map(|x| x * x).sum::<f32>() / grad.len() as f32).sqrt().max(f32::MIN_POSITIVE);
                grad.iter().map(move |x| -x / spread)
            })
            .collect();
        let mut adam = Adam::new(scores.len());
        for _ in 0..self.steps {
            let grad = score_gradient(&scores, &EXTREMAL_AREAS);
            adam.step(&mut scores, &grad, LEARNING_RATE);
        }
        let grids = scores.chunks(g * g).zip(&signs).map(|(s, sign)| Grid { height: h, width: w, values: up.apply(&s.iter().map(|x| sign * x).collect::<Vec<_>>()) }).collect();
        (grids, whole)
    }

    /// For each view under its mask (on the grid of `up`), the gradient
    /// with respect to the mask's cells of the probability of the view's
    /// predicted class, σ(sign · (logit(positive) − logit(negative))), once
    /// the mask is deleted: for x' = x (1 − D), ∂P/∂D(p) = −Σ_ch x_ch(p)
    /// ∂P/∂x'_ch(p), then back through the upsampling.
    fn deletion_gradients(&self, params: &Params, up: &Upsample, views: &[&[f32]], masks: &[&[f32]], signs: &[f32]) -> Vec<Vec<f32>> {
        let plane = up.rows.len() * up.cols.len();
        let deleted: Vec<Vec<f32>> = masks.iter().map(|m| up.apply(m)).collect();
        let mut batch = Vec::with_capacity(views.len() * views[0].len());
        for (view, d) in views.iter().zip(&deleted) {
            for channel in view.chunks(plane) {
                batch.extend(channel.iter().zip(d).map(|(&x, &d)| x * (1.0 - d)));
            }
        }
        let input_grad = self.class_probability_input_gradient(params, batch, signs);
        views
            .iter()
            .zip(input_grad.chunks(views[0].len()))
            .map(|(view, gx)| {
                let mut d_deleted = vec![0.0f32; plane];
                for (channel, g_channel) in view.chunks(plane).zip(gx.chunks(plane)) {
                    d_deleted.iter_mut().zip(channel.iter().zip(g_channel)).for_each(|(s, (&x, &g))| *s -= x * g);
                }
                up.adjoint(&d_deleted)
            })
            .collect()
    }

    /// The gradient of Σ_i σ(sign_i · log-odds_i) with respect to the views
    /// `batch` (image after image), in test mode.
    fn class_probability_input_gradient(&self, params: &Params, batch: Vec<f32>, signs: &[f32]) -> Vec<f32> {
        let device = self.net.device();
        let logits_name = self.net.spec.logits_blob();
        let tracked = self.net.input(batch, device).autodiff().require_grad();
        let blobs = HashMap::from([(self.net.spec.input.blob.clone(), tracked.clone())]);
        let logits = self.net.forward_from(params, blobs, 0, &mut Mode::Test, &[logits_name]).remove(logits_name).expect("logits");
        let [n, k, _, _] = logits.dims();
        // Row i: −sign_i on the negative logit, +sign_i on the positive one.
        let mut weights = vec![0.0f32; n * k];
        for (i, s) in signs.iter().enumerate() {
            weights[i * k + POSITIVE] = *s;
            weights[i * k + NEGATIVE] = -*s;
        }
        let weights = Tensor::<2>::from_data(TensorData::new(weights, [n, k]), device).autodiff();
        let grads = sigmoid((logits.reshape([n, k]) * weights).sum_dim(1)).sum().backward();
        to_f32s(&tracked.grad(&grads).expect("the input is on the path to the logits"))
    }
}

/// The 0/1 mask that deletes the share `area` of the cells, those with the
/// largest scores (ties by position).
fn top_cells(scores: &[f32], area: f32) -> Vec<f32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut mask = vec![0.0f32; scores.len()];
    for &i in &order[..((area * scores.len() as f32).round() as usize).min(scores.len())] {
        mask[i] = 1.0;
    }
    mask
}

/// Adam (Kingma & Ba 2015) over a flat vector, with its usual constants.
struct Adam {
    first: Vec<f32>,
    second: Vec<f32>,
    steps: i32,
}

impl Adam {
    fn new(len: usize) -> Adam {
        Adam { first: vec![0.0; len], second: vec![0.0; len], steps: 0 }
    }

    fn step(&mut self, values: &mut [f32], grad: &[f32], rate: f32) {
        const BETA1: f32 = 0.9;
        const BETA2: f32 = 0.999;
        self.steps += 1;
        let (c1, c2) = (1.0 - BETA1.powi(self.steps), 1.0 - BETA2.powi(self.steps));
        for ((v, &g), (m, s)) in values.iter_mut().zip(grad).zip(self.first.iter_mut().zip(self.second.iter_mut())) {
            *m = BETA1 * *m + (1.0 - BETA1) * g;
            *s = BETA2 * *s + (1.0 - BETA2) * g * g;
            *v -= rate * (*m / c1) / ((*s / c2).sqrt() + 1e-8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::caffe::prototxt;
    use crate::model::{Blob, Net, Weights};

    /// 3 × 6 × 6 → 3 × 3 convolution (4 channels, padded) → ReLU → global
    /// average pooling → 2 outputs, with fixed irregular weights.
    fn small_net() -> Net {
        let text = r#"input: "data" input_dim: 1 input_dim: 3 input_dim: 6 input_dim: 6
layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "r" type: "ReLU" bottom: "c" top: "c" }
layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" inner_product_param { num_output: 2 } }
"#;
        let irregular = |n: usize, k: usize| (0..n).map(|i| (((i * k + 3) % 17) as f32 - 8.0) / 9.0).collect::<Vec<f32>>();
        let mut w = Weights::default();
        w.layers.insert("c".into(), vec![Blob::new(vec![4, 3, 3, 3], irregular(108, 5)), Blob::new(vec![4], vec![0.3, 0.2, 0.4, 0.1])]);
        w.layers.insert("fc".into(), vec![Blob::new(vec![2, 4], irregular(8, 7)), Blob::new(vec![2], vec![0.1, -0.2])]);
        Net::new(prototxt::parse(text, "small").unwrap(), &w, &burn::prelude::Device::flex()).unwrap()
    }

    #[test]
    fn the_mask_gradient_matches_finite_differences() {
        let net = small_net();
        let mapper = Mapper::new(&net, Some(super::super::Method::Extremal), None).unwrap().with_cells(3).unwrap();
        let params = net.untracked_autodiff_params();
        let up = Upsample::blocks(3, 6, 6);
        let view: Vec<f32> = (0..108).map(|i| (((i * 11) % 23) as f32 - 11.0) / 7.0).collect();
        let mask: Vec<f32> = (0..9).map(|i| 0.15 + 0.08 * i as f32).collect();
        for sign in [1.0f32, -1.0] {
            let analytic = mapper.deletion_gradients(&params, &up, &[&view], &[&mask], &[sign]).remove(0);
            // z(mask) = sign · log-odds of the view with the upsampled mask deleted, by the forward pass alone.
            let z = |m: &[f32]| {
                let d = up.apply(m);
                let x: Vec<f32> = view.chunks(36).flat_map(|c| c.iter().zip(&d).map(|(x, d)| x * (1.0 - d)).collect::<Vec<_>>()).collect();
                let logits = net.blobs(net.input(x, net.device()), &["fc"]).unwrap().remove("fc").unwrap();
                super::super::sigmoid(sign * super::super::log_odds(&logits)[0]) as f64
            };
            // Small: a step of 1e-2 moves a ReLU across its kink here.
            let eps = 2e-3f32;
            for cell in 0..9 {
                let (mut plus, mut minus) = (mask.clone(), mask.clone());
                plus[cell] += eps;
                minus[cell] -= eps;
                let numeric = (z(&plus) - z(&minus)) / (2.0 * eps as f64);
                assert!((analytic[cell] as f64 - numeric).abs() < 1e-3 + 1e-2 * numeric.abs(), "sign {sign}, cell {cell}: {} vs {numeric}", analytic[cell]);
            }
        }
    }

    #[test]
    fn the_mask_of_an_area_deletes_the_top_scored_cells() {
        assert_eq!(top_cells(&[0.3, -1.0, 2.0, 0.3, 0.9], 0.4), [0.0, 0.0, 1.0, 0.0, 1.0]);
        // Ties by position; nested as the area grows.
        assert_eq!(top_cells(&[0.3, -1.0, 2.0, 0.3, 0.9], 0.6), [1.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(top_cells(&[0.3, -1.0], 0.0), [0.0, 0.0]);
    }

}
