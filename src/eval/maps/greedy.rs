//! Greedy deletion: the cells of a coarse grid ranked by deleting them, a
//! few at a time, in the order that lowers the predicted class's
//! probability fastest. Each round tries every cell left on top of those
//! already deleted (set to the mean colour, as the deletion test deletes)
//! and deletes the ones whose deletion left the least; the map is that
//! order, earliest first. It is iterated occlusion: occlusion asks what
//! each cell does alone in the whole view, greedy deletion asks again after
//! every round. Of two faces either of which is enough for "positive",
//! occlusion scores both at nothing; once one has gone, greedy deletion
//! sees the other.
//!
//! It answers "what must go for the network to change its mind?", which is
//! what the deletion test measures, by asking the network: a low deletion
//! score is what it searches for, not independent evidence that it explains
//! better than a map that was not fitted to the test (CAM). The rounds
//! bound its cost: with `n` cells and `r` rounds about `n r / 2` forward
//! passes a view (672 for 8 × 8 cells in 20 rounds), where deleting one cell
//! a round costs `n² / 2` (2,080).
//!
//! Written here rather than taken from a crate: no Rust crate implements
//! attribution methods, and this one is a loop over forward passes.

use super::blocks::Upsample;
use super::{cell_rect, log_odds, Grid, Mapper, OCCLUSION_BATCH};
use crate::model::net::to_f32s;
use burn::prelude::*;

/// Cells a side unless chosen otherwise: 28 pixels at 227, about a face.
pub const GREEDY_CELLS: usize = 8;

/// Rounds unless chosen otherwise: the deletion test's 20 steps, so that
/// each of its fractions is deleted in the order found for it.
pub const GREEDY_ROUNDS: usize = 20;

impl Mapper<'_> {
    /// Each view's deletion order as a map at the view's resolution: a cell
    /// deleted `k`-th of `n` scores (n − k) / n, signed toward the class
    /// the view's deletions lower (positive values: evidence for positive).
    pub(super) fn greedy(&self, input: Tensor<4>) -> (Vec<Grid>, Vec<f32>) {
        let [_, c, h, w] = input.dims();
        let views = to_f32s(&input);
        let logits_name = self.net.spec.logits_blob();
        let log_odds_of = |batch: Vec<f32>| {
            let mut blobs = self.net.blobs(self.net.input(batch, self.net.device()), &[logits_name]).expect("logits blob");
            log_odds(&blobs.remove(logits_name).expect("logits"))
        };
        let whole = log_odds_of(views.clone());
        let count = self.cells * self.cells;
        let up = Upsample::blocks(self.cells, h, w);
        let delete = |view: &mut [f32], cell: usize| {
            let (rows, cols) = cell_rect(cell, self.cells, h, w);
            for ch in 0..c {
                for y in rows.clone() {
                    let row = ch * h * w + y * w;
                    view[row + cols.start..row + cols.end].fill(0.0);
                }
            }
        };
        let grids = views
            .chunks(c * h * w)
            .zip(&whole)
            .map(|(view, &z)| {
                let sign = if z > 0.0 { 1.0 } else { -1.0 };
                let order = self.greedy_order(view, count, &delete, |batch| log_odds_of(batch).into_iter().map(|z| sign * z).collect());
                let mut score = vec![0.0f32; count];
                for (k, &cell) in order.iter().enumerate() {
                    score[cell] = sign * (count - k) as f32 / count as f32;
                }
                Grid { height: h, width: w, values: up.apply(&score) }
            })
            .collect();
        (grids, whole)
    }

    /// The order in which `count` cells leave `view`: in each of the
    /// rounds, the cells (to the round's share of all) whose deletion on
    /// top of the earlier rounds' leaves `evidence` — the predicted class's
    /// log-odds of a batch of views — lowest; ties by position.
    fn greedy_order(&self, view: &[f32], count: usize, delete: &dyn Fn(&mut [f32], usize), evidence: impl Fn(Vec<f32>) -> Vec<f32>) -> Vec<usize> {
        let rounds = self.steps.min(count);
        let (mut current, mut left, mut order) = (view.to_vec(), (0..count).collect::<Vec<usize>>(), Vec::with_capacity(count));
        for round in 1..=rounds {
            // Deleted after this round: round / rounds of the cells, rounded.
            let take = (round * count + rounds / 2) / rounds - order.len();
            if take == 0 {
                continue;
            }
            let mut left_after = Vec::with_capacity(left.len());
            for chunk in left.chunks(OCCLUSION_BATCH) {
                let mut batch = Vec::with_capacity(chunk.len() * view.len());
                for &cell in chunk {
                    let start = batch.len();
                    batch.extend_from_slice(&current);
                    delete(&mut batch[start..], cell);
                }
                left_after.extend(evidence(batch));
            }
            let mut ranked: Vec<usize> = (0..left.len()).collect();
            ranked.sort_by(|&a, &b| left_after[a].total_cmp(&left_after[b]).then(left[a].cmp(&left[b])));
            let chosen: Vec<usize> = ranked[..take].iter().map(|&i| left[i]).collect();
            for &cell in &chosen {
                delete(&mut current, cell);
            }
            left.retain(|cell| !chosen.contains(cell));
            order.extend(chosen);
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::super::Method;
    use super::*;
    use crate::model::caffe::prototxt;
    use crate::model::{Blob, Net, Weights};

    /// 1 × 4 × 4 → global average pooling → 2 outputs: the log-odds are
    /// (w_pos − w_neg) times the view's mean, so deleting a pixel lowers the
    /// predicted class's evidence by its value — the greedy order is the
    /// cells by their sum, computable by hand.
    fn mean_net() -> Net {
        let text = r#"input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" inner_product_param { num_output: 2 } }
"#;
        let mut w = Weights::default();
        w.layers.insert("fc".into(), vec![Blob::new(vec![2, 1], vec![-1.0, 1.0]), Blob::new(vec![2], vec![0.0, 0.0])]);
        Net::new(prototxt::parse(text, "mean").unwrap(), &w, &burn::prelude::Device::flex()).unwrap()
    }

    #[test]
    fn the_order_deletes_the_strongest_evidence_first_in_rounds() {
        let net = mean_net();
        // 2 × 2 cells of 2 × 2 pixels; cell sums 4, 8, −4, 2: positive overall.
        #[rustfmt::skip]
        let view = vec![
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            -1.0, -1.0, 0.5, 0.5,
            -1.0, -1.0, 0.5, 0.5f32,
        ];
        for rounds in [1, 2, 4] {
            let mapper = Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_cells(2).unwrap().with_steps(rounds).unwrap();
            let (grids, log_odds) = mapper.maps(net.input(view.clone(), net.device()));
            assert!(log_odds[0] > 0.0);
            // Cells by score: 1 (8), 0 (4), 3 (2), 2 (−4): the values 1, 3/4, 1/4, 1/2, each over its cell.
            let cell_value = |cell: usize| {
                let (rows, cols) = cell_rect(cell, 2, 4, 4);
                grids[0].values[rows.start * 4 + cols.start]
            };
            assert_eq!([0, 1, 2, 3].map(cell_value), [0.75, 1.0, 0.25, 0.5], "{rounds} rounds");
        }
        // A negative view: the map is negative, the most negative where deletion raises P(positive) most.
        let negative: Vec<f32> = view.iter().map(|v| -v).collect();
        let mapper = Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_cells(2).unwrap().with_steps(4).unwrap();
        let (grids, _) = mapper.maps(net.input(negative, net.device()));
        assert_eq!(grids[0].values[2], -1.0);
        assert_eq!(grids[0].values[0], -0.75);
    }

    #[test]
    fn rounds_take_their_share_of_the_cells() {
        let net = mean_net();
        let view: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let mapper = Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_cells(4).unwrap().with_steps(3).unwrap();
        let calls = std::cell::Cell::new(0);
        let delete = |v: &mut [f32], cell: usize| v[cell] = 0.0;
        let order = mapper.greedy_order(&view, 16, &delete, |batch: Vec<f32>| {
            calls.set(calls.get() + 1);
            batch.chunks(16).map(|v| v.iter().sum()).collect()
        });
        // Largest values first; every cell once.
        assert_eq!(order, (0..16).rev().collect::<Vec<usize>>());
        // Rounds of 5, 6 and 5 cells: 16 + 11 + 5 tries, in batches of at most 32 — one call a round.
        assert_eq!(calls.get(), 3);
    }
}
