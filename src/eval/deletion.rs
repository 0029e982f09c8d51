//! How faithful a map is: the deletion test (Petsiuk et al. 2018). Each
//! test image's centre crop loses its pixels in the order the map ranks
//! them — the most evidence for the predicted class first — a fraction at a
//! time, deleted pixels set to the mean colour (0 after mean subtraction);
//! the predicted class's probability is read at every step. A map that
//! points at what the network uses makes the probability fall fast: a small
//! area under the curve.
//!
//! The baseline deletes the same areas chosen at random, at the map's own
//! granularity: a random value per cell of the network's grid (of the
//! occlusion grid; of RISE's masks), upsampled exactly as the map is, so
//! both orders delete blobs of the same size and differ only in which.

use super::maps::{cell_rect, clear_cell, Grid, Mapper, NEGATIVE, POSITIVE};
use super::scoring::Views;
use crate::model::net::to_f32s;
use crate::preprocess::Preprocess;
use burn::tensor::activation::softmax;
use image::RgbImage;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deletion {
    /// Fractions of the crop deleted, 0 to 1.
    pub fractions: Vec<f64>,
    /// Mean probability of the predicted class at each fraction, deleting in the map's order.
    pub curve_map: Vec<f64>,
    /// The same, deleting random areas of the map's granularity.
    pub curve_random: Vec<f64>,
    /// Mean over images of the area under each image's curve.
    pub deletion_auc_map: f64,
    pub deletion_auc_random: f64,
    /// Per image: (area deleting by the map, area deleting at random).
    pub per_image: Vec<(f64, f64)>,
}

/// Runs the deletion test on the centre crop of each stored image, with
/// `steps` deletions (fractions k/steps), `batch` views per forward pass; the
/// random orders are drawn from `seed`.
pub fn deletion(mapper: &Mapper, pre: &Preprocess, images: &[&RgbImage], steps: usize, seed: u64, batch: usize, mut progress: impl FnMut()) -> Deletion {
    let steps = steps.max(1);
    let fractions: Vec<f64> = (0..=steps).map(|k| k as f64 / steps as f64).collect();
    let crop = Views::Center.crops(pre)[0];
    let side = crop.size;
    let plane = side * side;
    let (mut sum_map, mut sum_random) = (vec![0.0; steps + 1], vec![0.0; steps + 1]);
    let mut per_image = Vec::new();
    for (i, stored) in images.iter().enumerate() {
        let Mapped { view, predicted, evidence: saliency, grid } = mapped_centre(mapper, pre, stored, crop);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(i as u64));
        let (height, width) = mapper.baseline_cells().map_or((grid.height, grid.width), |c| (c, c));
        let random = Grid { height, width, values: (0..height * width).map(|_| rng.gen::<f32>()).collect() }.resized(side, side).values;
        let mut curves = Vec::new();
        for order in [ranking(&saliency), ranking(&random)] {
            let views: Vec<Vec<f32>> = fractions
                .iter()
                .map(|f| {
                    let mut v = view.clone();
                    for &p in &order[..((f * plane as f64).round() as usize).min(plane)] {
                        for ch in 0..3 {
                            v[ch * plane + p] = 0.0;
                        }
                    }
                    v
                })
                .collect();
            curves.push(class_probability(mapper, &views, predicted, batch));
        }
        for (k, (m, r)) in curves[0].iter().zip(&curves[1]).enumerate() {
            sum_map[k] += m;
            sum_random[k] += r;
        }
        per_image.push((area(&fractions, &curves[0]), area(&fractions, &curves[1])));
        progress();
    }
    let n = images.len().max(1) as f64;
    let mean = |v: &[f64]| v.iter().map(|x| x / n).collect::<Vec<f64>>();
    Deletion {
        curve_map: mean(&sum_map),
        curve_random: mean(&sum_random),
        deletion_auc_map: per_image.iter().map(|p| p.0).sum::<f64>() / n,
        deletion_auc_random: per_image.iter().map(|p| p.1).sum::<f64>() / n,
        fractions,
        per_image,
    }
}

/// The deletion test at the level of the cells of a `cells` × `cells` grid
/// over the centre crop, for three orders of the cells: the map's (ranked by
/// the map's mean over each cell), random, and greedy — each step deletes the
/// cell whose deletion lowers the predicted class's probability most, found
/// by trying every cell left. The greedy order reads the network's answers,
/// not a map: it shows how low an order of these cells gets the area (close
/// to the least, being greedy), against which the map's area is read. It
/// costs cells²(cells² + 1)/2 forward passes an image (2,080 at 8 cells).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellOrders {
    pub cells: usize,
    pub images: usize,
    /// Fractions of the cells deleted, k / cells².
    pub fractions: Vec<f64>,
    pub curve_map: Vec<f64>,
    pub curve_random: Vec<f64>,
    pub curve_greedy: Vec<f64>,
    pub auc_map: f64,
    pub auc_random: f64,
    pub auc_greedy: f64,
}

pub fn cell_orders(mapper: &Mapper, pre: &Preprocess, images: &[&RgbImage], cells: usize, seed: u64, batch: usize, mut progress: impl FnMut()) -> CellOrders {
    use rand::seq::SliceRandom;
    let crop = Views::Center.crops(pre)[0];
    let side = crop.size;
    let count = cells * cells;
    let fractions: Vec<f64> = (0..=count).map(|k| k as f64 / count as f64).collect();
    // The crop's pixels of each cell, row-major over the grid.
    let pixels: Vec<Vec<usize>> = (0..count)
        .map(|cell| {
            let (rows, cols) = cell_rect(cell, cells, side, side);
            rows.flat_map(|y| cols.clone().map(move |x| y * side + x)).collect()
        })
        .collect();
    let delete = |view: &mut [f32], cell: usize| clear_cell(view, cell, cells, side, side);
    let mut sums = [vec![0.0; count + 1], vec![0.0; count + 1], vec![0.0; count + 1]];
    for (i, stored) in images.iter().enumerate() {
        let Mapped { view, predicted, evidence, .. } = mapped_centre(mapper, pre, stored, crop);
        let cell_means: Vec<f32> = pixels.iter().map(|ps| ps.iter().map(|&p| evidence[p]).sum::<f32>() / ps.len().max(1) as f32).collect();
        let by_map = ranking(&cell_means);
        let mut at_random: Vec<usize> = (0..count).collect();
        at_random.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(i as u64)));
        let mut curves = Vec::new();
        for order in [&by_map, &at_random] {
            let mut v = view.clone();
            let mut views = vec![v.clone()];
            for &cell in order {
                delete(&mut v, cell);
                views.push(v.clone());
            }
            curves.push(class_probability(mapper, &views, predicted, batch));
        }
        let mut greedy = class_probability(mapper, std::slice::from_ref(&view), predicted, batch);
        let (mut v, mut left) = (view, (0..count).collect::<Vec<usize>>());
        while !left.is_empty() {
            let tries: Vec<Vec<f32>> = left.iter().map(|&cell| {
                let mut t = v.clone();
                delete(&mut t, cell);
                t
            }).collect();
            let p = class_probability(mapper, &tries, predicted, batch);
            let best = (0..p.len()).min_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b))).expect("a cell is left");
            greedy.push(p[best]);
            delete(&mut v, left.remove(best));
        }
        curves.push(greedy);
        for (sum, curve) in sums.iter_mut().zip(&curves) {
            for (s, c) in sum.iter_mut().zip(curve) {
                *s += c;
            }
        }
        progress();
    }
    let n = images.len().max(1) as f64;
    let [curve_map, curve_random, curve_greedy] = sums.map(|s| s.iter().map(|x| x / n).collect::<Vec<f64>>());
    CellOrders {
        cells,
        images: images.len(),
        // The mean of the images' areas is the area of the mean curve (one grid of fractions).
        auc_map: area(&fractions, &curve_map),
        auc_random: area(&fractions, &curve_random),
        auc_greedy: area(&fractions, &curve_greedy),
        curve_map,
        curve_random,
        curve_greedy,
        fractions,
    }
}

/// An image's centre crop as the network sees it, the class the network
/// predicts for it, and its map at the crop's size signed so that evidence
/// for that class is positive (deleted first), with the map's own grid.
struct Mapped {
    view: Vec<f32>,
    predicted: usize,
    evidence: Vec<f32>,
    grid: Grid,
}

fn mapped_centre(mapper: &Mapper, pre: &Preprocess, stored: &RgbImage, crop: crate::preprocess::Crop) -> Mapped {
    let mut view = vec![0.0f32; pre.view_len()];
    pre.write_view(stored, crop, &mut view);
    let (mut grids, log_odds) = mapper.maps(mapper.net.input(view.clone(), mapper.net.device()));
    let predicted = if log_odds[0] > 0.0 { POSITIVE } else { NEGATIVE };
    let sign = if predicted == POSITIVE { 1.0 } else { -1.0 };
    let grid = grids.swap_remove(0);
    let evidence = grid.resized(crop.size, crop.size).values.iter().map(|v| sign * v).collect();
    Mapped { view, predicted, evidence, grid }
}

/// Pixel positions from the largest value down (ties by position).
fn ranking(values: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order
}

fn class_probability(mapper: &Mapper, views: &[Vec<f32>], class: usize, batch: usize) -> Vec<f64> {
    let net = mapper.net;
    let logits_name = net.spec.logits_blob().to_string();
    let mut out = Vec::new();
    for chunk in views.chunks(batch.max(1)) {
        let input = net.input(chunk.concat(), net.device());
        let logits = net.blobs(input, &[logits_name.as_str()]).expect("logits blob").remove(&logits_name).expect("logits");
        let [n, k, _, _] = logits.dims();
        let p = to_f32s(&softmax(logits.reshape([n, k]), 1));
        out.extend((0..n).map(|i| p[i * k + class] as f64));
    }
    out
}

/// The trapezoid area under `y` over `x`.
fn area(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2).zip(y.windows(2)).map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_and_ranking_by_hand() {
        assert!((area(&[0.0, 0.5, 1.0], &[1.0, 0.5, 0.0]) - 0.5).abs() < 1e-12);
        assert!((area(&[0.0, 1.0], &[0.8, 0.8]) - 0.8).abs() < 1e-12);
        assert_eq!(ranking(&[0.1, 0.9, -1.0, 0.9]), [1, 3, 0, 2]);
    }
}
