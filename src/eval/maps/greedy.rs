//! Greedy deletion: the cells of a coarse grid ranked by deleting them, a
//! few at a time, in the order that lowers the predicted class's
//! probability fastest. Each round tries every cell left on top of those
//! already deleted (set to the mean colour, as the deletion test deletes)
//! and deletes the ones whose deletion left the least; the map is that
//! order, earliest first, each cell weighted by how much of the answer's
//! fall was still to come when it went. It is iterated occlusion: occlusion asks what
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
use super::{clear_cell, Grid, Mapper, OCCLUSION_BATCH};
use crate::model::net::to_f32s;
use burn::prelude::*;

/// Cells a side unless chosen otherwise: 28 pixels at 227, about a face.
pub const GREEDY_CELLS: usize = 8;

/// Rounds unless chosen otherwise: the deletion test's 20 steps, so that
/// each of its fractions is deleted in the order found for it.
pub const GREEDY_ROUNDS: usize = 20;

/// Added to a cell's value per step of its rank, so that cells whose
/// rounds leave the same fall to come keep their deletion order.
const RANK_STEP: f32 = 1e-3;

impl Mapper<'_> {
    /// Each view's deletion order as a map at the view's resolution, signed
    /// toward the class the deletions lower (positive values: evidence for
    /// positive). A cell's value is the fall of the predicted class's
    /// probability still to come when its round deletes it — the sum of the
    /// falls of that round and the later ones, rises counted as nothing —
    /// plus [`RANK_STEP`] times its rank from the end: cells deleted before
    /// the answer fell are bright, those deleted after it bottomed out
    /// faint, and the values fall strictly along the order.
    pub(super) fn greedy(&self, input: Tensor<4>) -> (Vec<Grid>, Vec<f32>) {
        let [_, c, h, w] = input.dims();
        let views = to_f32s(&input);
        let whole = self.log_odds_of(input);
        let count = self.cells * self.cells;
        let up = Upsample::blocks(self.cells, h, w);
        let delete = |view: &mut [f32], cell: usize| clear_cell(view, cell, self.cells, h, w);
        let grids = views
            .chunks(c * h * w)
            .zip(&whole)
            .map(|(view, &z)| {
                let sign = if z > 0.0 { 1.0 } else { -1.0 };
                let rounds = self.greedy_rounds(view, count, &delete, |batch| self.log_odds_of(self.net.input(batch, self.net.device())).into_iter().map(|z| sign * z).collect());
                // The probability before each round and after the last.
                let p: Vec<f32> = std::iter::once(sign * z).chain(rounds.iter().map(|r| r.evidence_after)).map(super::sigmoid).collect();
                let mut to_come = vec![0.0f32; rounds.len() + 1];
                for r in (0..rounds.len()).rev() {
                    to_come[r] = to_come[r + 1] + (p[r] - p[r + 1]).max(0.0);
                }
                let mut score = vec![0.0f32; count];
                for (k, (cell, r)) in rounds.iter().enumerate().flat_map(|(r, round)| round.cells.iter().map(move |&cell| (cell, r))).enumerate() {
                    score[cell] = sign * (to_come[r] + RANK_STEP * (count - k) as f32 / count as f32);
                }
                Grid { height: h, width: w, values: up.apply(&score) }
            })
            .collect();
        (grids, whole)
    }

    /// The rounds in which `count` cells leave `view`: in each, the cells
    /// (to the round's share of all) whose deletion on top of the earlier
    /// rounds' leaves `evidence` — the predicted class's log-odds of a batch
    /// of views — lowest, ties by position; then the evidence with them gone.
    fn greedy_rounds(&self, view: &[f32], count: usize, delete: &dyn Fn(&mut [f32], usize), evidence: impl Fn(Vec<f32>) -> Vec<f32>) -> Vec<Round> {
        let rounds = self.steps.min(count);
        let (mut current, mut left, mut done) = (view.to_vec(), (0..count).collect::<Vec<usize>>(), Vec::with_capacity(rounds));
        for round in 1..=rounds {
            // Deleted after this round: round / rounds of the cells, rounded.
            let take = (round * count + rounds / 2) / rounds - (count - left.len());
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
            let cells: Vec<usize> = ranked[..take].iter().map(|&i| left[i]).collect();
            for &cell in &cells {
                delete(&mut current, cell);
            }
            left.retain(|cell| !cells.contains(cell));
            done.push(Round { cells, evidence_after: evidence(current.clone())[0] });
        }
        done
    }
}

/// One round of greedy deletion: the cells it deleted, best first, and the
/// predicted class's log-odds once they (and the earlier rounds') are gone.
struct Round {
    cells: Vec<usize>,
    evidence_after: f32,
}

#[cfg(test)]
mod tests {
    use super::super::{cell_rect, Method};
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

    /// Cell (row, column)'s value in a map of 2 × 2-pixel cells over 4 × 4.
    fn cell_value(grid: &Grid, cell: usize) -> f32 {
        let (rows, cols) = cell_rect(cell, 2, 4, 4);
        grid.values[rows.start * 4 + cols.start]
    }

    #[test]
    fn the_order_deletes_the_strongest_evidence_first_and_values_the_fall_to_come() {
        let net = mean_net();
        // 2 × 2 cells of 2 × 2 pixels; cell sums 4, 8, −4, 2: positive, log-odds 2 · 10/16.
        #[rustfmt::skip]
        let view = vec![
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            -1.0, -1.0, 0.5, 0.5,
            -1.0, -1.0, 0.5, 0.5f32,
        ];
        let sigmoid = super::super::sigmoid;
        // One cell a round: cells 1, 0, 3, 2 leave log-odds 2/16 · (2, −2, −4, 0).
        let p = [10.0f32, 2.0, -2.0, -4.0, 0.0].map(|sum| sigmoid(2.0 * sum / 16.0));
        // The falls still to come at each round (the last round's rise counts nothing).
        let to_come = [p[0] - p[3], p[1] - p[3], p[2] - p[3], 0.0];
        let mapper = Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_cells(2).unwrap().with_steps(4).unwrap();
        let (grids, log_odds) = mapper.maps(net.input(view.clone(), net.device()));
        assert!((log_odds[0] - 1.25).abs() < 1e-6);
        for (k, cell) in [1, 0, 3, 2].into_iter().enumerate() {
            let expected = to_come[k] + RANK_STEP * (4 - k) as f32 / 4.0;
            assert!((cell_value(&grids[0], cell) - expected).abs() < 1e-6, "cell {cell}: {} vs {expected}", cell_value(&grids[0], cell));
        }
        // In one or two rounds the order is the same (the network is linear): values fall along it.
        for rounds in [1, 2] {
            let mapper = Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_cells(2).unwrap().with_steps(rounds).unwrap();
            let (grids, _) = mapper.maps(net.input(view.clone(), net.device()));
            let v = [1, 0, 3, 2].map(|cell| cell_value(&grids[0], cell));
            assert!(v.windows(2).all(|w| w[0] > w[1]), "{rounds} rounds: {v:?}");
        }
        // A negative view: the map is negative, most negative where deleting raises P(positive) first.
        let negative: Vec<f32> = view.iter().map(|v| -v).collect();
        let (grids, _) = mapper.maps(net.input(negative, net.device()));
        assert!((cell_value(&grids[0], 1) + to_come[0] + RANK_STEP).abs() < 1e-6);
        assert!(cell_value(&grids[0], 2) < 0.0 && cell_value(&grids[0], 2) > -RANK_STEP);
    }

    #[test]
    fn rounds_take_their_share_of_the_cells() {
        let net = mean_net();
        let view: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let mapper = Mapper::new(&net, Some(Method::Greedy), None).unwrap().with_cells(4).unwrap().with_steps(3).unwrap();
        let calls = std::cell::Cell::new(0);
        let delete = |v: &mut [f32], cell: usize| v[cell] = 0.0;
        let rounds = mapper.greedy_rounds(&view, 16, &delete, |batch: Vec<f32>| {
            calls.set(calls.get() + 1);
            batch.chunks(16).map(|v| v.iter().sum()).collect()
        });
        // Rounds of 5, 6 and 5 cells, largest values first; each leaves the sum of the rest.
        let cells: Vec<Vec<usize>> = rounds.iter().map(|r| r.cells.clone()).collect();
        assert_eq!(cells, [(11..16).rev().collect::<Vec<usize>>(), (5..11).rev().collect(), (0..5).rev().collect()]);
        assert_eq!(rounds.iter().map(|r| r.evidence_after).collect::<Vec<f32>>(), [55.0, 10.0, 0.0]);
        // 16 + 11 + 5 tries, in batches of at most 32 (a call a round), and a call for each round's result.
        assert_eq!(calls.get(), 6);
    }
}
