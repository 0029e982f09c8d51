//! Sentiment maps: where in an image a two-output (negative, positive)
//! network sees positive or negative.
//!
//! A map is signed: its value at a position is that position's contribution
//! to the log-odds `logit(positive) − logit(negative)`, so positive values
//! are evidence for positive, negative values for negative.
//!
//! - **CAM** (Zhou et al. 2016), for a network that ends in global average
//!   pooling followed only by linear layers (SqueezeNet's pool → fc9-2,
//!   EfficientNet-Lite0's pool → `_fc`): with `F` the pooled features and
//!   `w` the composed linear weights, `map(x, y) = Σ_c (w_pos,c − w_neg,c)
//!   F_c(x, y)`, and the log-odds are the map's mean plus the composed bias.
//! - **Grad-CAM** (Selvaraju et al. 2017), for any network at any layer `A`:
//!   `map(x, y) = Σ_c α_c A_c(x, y)` with `α_c = Σ_(x,y) ∂ log-odds / ∂A_c(x, y)`.
//!   The paper averages the gradient over positions instead of summing it,
//!   a constant factor that display normalisation removes; summed, Grad-CAM
//!   at a globally pooled layer is CAM itself, not CAM up to a factor.
//! - **Occlusion** (Zeiler & Fergus 2014), for any network, from its output
//!   alone: the view is cut into a grid of cells, each cell in turn set to
//!   the mean colour (what the deletion test deletes with), and the cell's
//!   value is how much the log-odds fell without it. One forward pass per
//!   cell: a 16 × 16 grid costs 256 passes a view, where CAM costs one.
//! - **RISE** (Petsiuk et al. 2018), for any network, from its output alone:
//!   the view under many random masks (a coarse grid of cells each kept
//!   with probability ½, upsampled bilinearly and shifted by a random
//!   fraction of a cell; what a mask removes goes to the mean colour, as in
//!   the deletion test). A position's value is the least-squares slope of
//!   P(positive) on the mask's value there: how much keeping the position
//!   raises P(positive), the other positions varying at random. Where
//!   occlusion removes one cell from a whole view, RISE sees each position
//!   with about half the view gone, so evidence that one cell alone does
//!   not carry still shows. Petsiuk et al.'s own value, Σ P · mask / (N p),
//!   is this slope plus a constant times the mask's mean, which signs
//!   cannot be read from.
//!
//! - **Extremal perturbation** (Fong, Patrick & Vedaldi 2019), for any
//!   network, from its input gradient: an order of the cells of a grid whose
//!   nested deletions (5 % to 80 % of the view) lower the predicted class
//!   fastest, searched through the network ([`extremal`]). Where occlusion and RISE average
//!   over cells removed at random, it searches for the region to remove, as
//!   the deletion test's best orders do; 40 forward and backward passes of
//!   8 masked copies a view.
//! - **Greedy deletion**, for any network, from its output alone: the cells
//!   of a grid deleted a few at a time, each round the ones whose deletion
//!   on top of the earlier rounds' lowers the predicted class most
//!   ([`greedy`]); the map is that order. Iterated occlusion: about 670
//!   forward passes a view at 8 × 8 cells in 20 rounds.
//!
//! Maps are computed per view, on the network's grid (13 × 13 for
//! SqueezeNet at 227, 7 × 7 for EfficientNet-Lite0 at 224), then brought to
//! the stored (warped) image: each view's map upsampled to its crop,
//! mirrored back if the view was, and averaged where views overlap.

mod blocks;
mod extremal;
mod greedy;

pub use extremal::{EXTREMAL_AREAS, EXTREMAL_CELLS, EXTREMAL_STEPS};
pub use greedy::{GREEDY_CELLS, GREEDY_ROUNDS};

use super::scoring::Views;
use crate::model::net::{to_f32s, Mode, Net};
use crate::model::spec::{LayerKind, PoolMethod};
use crate::preprocess::Preprocess;
use burn::prelude::*;
use image::{ImageBuffer, Luma, RgbImage};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The output index of each class (deepsent's convention: 0 negative, 1 positive).
pub const NEGATIVE: usize = 0;
pub const POSITIVE: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Cam,
    GradCam,
    Occlusion,
    Rise,
    Extremal,
    Greedy,
}

/// Cells a side of an occlusion map unless chosen otherwise: finer than
/// either backbone's last grid (13, 7), at 256 forward passes a view.
pub const OCCLUSION_CELLS: usize = 16;

/// Occluded or masked views per forward pass.
const OCCLUSION_BATCH: usize = 32;

/// Cells a side of RISE's masks unless chosen otherwise: Petsiuk et al.'s
/// 7 for a 224 input.
pub const RISE_CELLS: usize = 7;

/// Masks a view unless chosen otherwise: 16 forward passes of 32 views.
/// Petsiuk et al. use 4,000–8,000, at 8–16× the cost; the slope's noise
/// falls as the square root of the count.
pub const RISE_MASKS: usize = 512;

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Cam => "CAM",
            Method::GradCam => "Grad-CAM",
            Method::Occlusion => "occlusion",
            Method::Rise => "RISE",
            Method::Extremal => "extremal perturbation",
            Method::Greedy => "greedy deletion",
        })
    }
}

/// A map on the network's grid for one view, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub height: usize,
    pub width: usize,
    pub values: Vec<f32>,
}

impl Grid {
    /// Bilinear resampling to `width` × `height` (the image crate's
    /// triangle filter: bilinear when enlarging, area-weighted when shrinking).
    pub fn resized(&self, width: usize, height: usize) -> Grid {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        // The image crate clamps float pixels to [0, 1]: the values go there
        // and back by an affine map, which a filter whose weights are
        // non-negative and sum to one commutes with.
        let (lo, hi) = self.values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let unit: Vec<f32> = self.values.iter().map(|v| (v - lo) / span).collect();
        let buffer: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_raw(self.width as u32, self.height as u32, unit).expect("values fill the grid");
        let out = image::imageops::resize(&buffer, width as u32, height as u32, image::imageops::FilterType::Triangle);
        Grid { height, width, values: out.into_raw().into_iter().map(|u| u * span + lo).collect() }
    }

    /// Left and right swapped (a mirrored view's map, back to the image's orientation).
    pub fn mirrored(&self) -> Grid {
        let mut values = self.values.clone();
        for row in values.chunks_mut(self.width) {
            row.reverse();
        }
        Grid { values, ..self.clone() }
    }

    /// The largest |value| (0 for an empty or all-zero map).
    pub fn peak(&self) -> f32 {
        self.values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }
}

/// The composed linear layers between a global average pooling and the logits.
#[derive(Debug, Clone)]
pub struct LinearHead {
    /// The blob that is pooled: where CAM is defined.
    pub feature_blob: String,
    /// K × C, row k the weights of logit k over the pooled channels.
    pub weight: Vec<Vec<f64>>,
    pub bias: Vec<f64>,
}

impl LinearHead {
    /// The weights of the log-odds (positive − negative) over the channels.
    pub fn log_odds_weights(&self) -> Vec<f32> {
        self.weight[POSITIVE].iter().zip(&self.weight[NEGATIVE]).map(|(p, n)| (p - n) as f32).collect()
    }

    pub fn log_odds_bias(&self) -> f64 {
        self.bias[POSITIVE] - self.bias[NEGATIVE]
    }
}

/// The linear head of a network that ends in global average pooling and
/// linear layers (inner products, 1 × 1 convolutions, dropout, flatten), or
/// why it does not.
pub fn linear_head(net: &Net) -> Result<LinearHead, String> {
    let spec = &net.spec;
    let shapes = spec.infer_shapes().map_err(|e| e.to_string())?;
    let logits = spec.logits_blob().to_string();
    let k: usize = shapes.blobs[&logits].iter().product();
    let mut weight: Vec<Vec<f64>> = (0..k).map(|i| (0..k).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    let mut bias = vec![0.0; k];
    let mut blob = logits;
    let mut before = spec.layers.len();
    loop {
        let Some(index) = spec.layers[..before].iter().rposition(|l| l.tops.contains(&blob)) else {
            return Err(format!("no global average pooling before the output {}: CAM needs one; use Grad-CAM", spec.logits_blob()));
        };
        let layer = &spec.layers[index];
        let input = &shapes.layer_inputs[index][0];
        match &layer.kind {
            LayerKind::InnerProduct { num_output, .. } | LayerKind::Convolution { num_output, kernel: [1, 1], stride: [1, 1], pad: [(0, 0), (0, 0)], group: 1, .. } => {
                let inputs = if matches!(layer.kind, LayerKind::Convolution { .. }) { input[0] } else { input.iter().product() };
                if matches!(layer.kind, LayerKind::Convolution { .. }) && input[1] * input[2] != 1 {
                    return Err(format!("layer {} maps positions before the pooling is reached: CAM needs linear layers after it only; use Grad-CAM", layer.name));
                }
                let w = to_f32s(&net.params[index][0]);
                if let Some(b) = net.params[index].get(1) {
                    for (total, add) in bias.iter_mut().zip(weight.iter().map(|row| row.iter().zip(to_f32s(b)).map(|(r, b)| r * b as f64).sum::<f64>())) {
                        *total += add;
                    }
                }
                weight = weight.iter().map(|row| (0..inputs).map(|c| (0..*num_output).map(|o| row[o] * w[o * inputs + c] as f64).sum()).collect()).collect();
            }
            LayerKind::Dropout { .. } | LayerKind::Flatten => {}
            LayerKind::Pooling { method: PoolMethod::Ave, global, kernel, pad: [0, 0], .. } if *global || kernel[..] == input[1..] => {
                return Ok(LinearHead { feature_blob: layer.bottoms[0].clone(), weight, bias });
            }
            other => {
                return Err(format!("layer {} ({}) lies between the last global average pooling and the output: CAM needs linear layers only there; use Grad-CAM", layer.name, other.type_name()));
            }
        }
        blob = layer.bottoms[0].clone();
        before = index;
    }
}

/// Computes maps of a network's views.
pub struct Mapper<'a> {
    pub net: &'a Net,
    pub method: Method,
    /// The blob mapped.
    pub layer: String,
    head: Option<LinearHead>,
    /// Grad-CAM: where the tracked pass starts, and the earlier blobs it reads.
    cut: (usize, Vec<String>),
    /// Occlusion, RISE, extremal perturbation and greedy deletion: cells a side.
    cells: usize,
    /// RISE: masks a view, and the seed they are drawn from.
    masks: usize,
    seed: u64,
    /// Extremal perturbation: gradient steps a mask; greedy deletion: rounds.
    steps: usize,
}

impl<'a> Mapper<'a> {
    /// CAM where the network allows it, else Grad-CAM at the last spatial
    /// layer (`method` and `layer` choose otherwise).
    pub fn new(net: &'a Net, method: Option<Method>, layer: Option<&str>) -> Result<Mapper<'a>, String> {
        let spec = &net.spec;
        let shapes = spec.infer_shapes().map_err(|e| e.to_string())?;
        let outputs: usize = shapes.blobs[spec.logits_blob()].iter().product();
        if outputs != 2 {
            return Err(format!("sentiment maps need a network with 2 outputs (negative, positive); this one has {outputs}"));
        }
        let head = linear_head(net);
        let method = match (method, &head) {
            (Some(m), _) => m,
            (None, Ok(h)) if layer.is_none_or(|l| l == h.feature_blob) => Method::Cam,
            (None, _) => Method::GradCam,
        };
        let layer = match (method, &head) {
            (Method::Cam, Err(why)) => return Err(why.clone()),
            (Method::Cam, Ok(h)) => match layer {
                Some(l) if l != h.feature_blob => return Err(format!("CAM is defined at the pooled features, {}; map {l} with Grad-CAM", h.feature_blob)),
                _ => h.feature_blob.clone(),
            },
            (Method::GradCam, _) => match layer {
                Some(l) => l.to_string(),
                None => last_spatial_blob(net).ok_or("the network has no layer with more than one position to map")?,
            },
            (Method::Occlusion | Method::Rise | Method::Extremal | Method::Greedy, _) => match layer {
                Some(l) if l != spec.input.blob => return Err(format!("{method} maps the input, {}; map {l} with Grad-CAM", spec.input.blob)),
                _ => spec.input.blob.clone(),
            },
        };
        let Some(shape) = shapes.blobs.get(&layer) else {
            return Err(format!("no blob {layer:?} in {} (e.g. {})", spec.name, spec.trunk_blobs().iter().rev().take(4).cloned().collect::<Vec<_>>().join(", ")));
        };
        if shape.len() != 3 {
            return Err(format!("{layer} has shape {shape:?}: a map needs channels × height × width"));
        }
        let cut = match method {
            Method::Cam | Method::Occlusion | Method::Rise | Method::Extremal | Method::Greedy => (0, Vec::new()),
            Method::GradCam => {
                let cut = net.cut_after(&layer).ok_or_else(|| format!("{layer} is computed inside a fused step (a Fire module's expand layers): map its concatenation instead"))?;
                if !cut.1.contains(&layer) {
                    return Err(format!("nothing after {layer} reads it: its gradient is zero"));
                }
                cut
            }
        };
        let cells = match method {
            Method::Rise => RISE_CELLS,
            Method::Extremal => EXTREMAL_CELLS,
            Method::Greedy => GREEDY_CELLS,
            _ => OCCLUSION_CELLS,
        };
        let steps = if method == Method::Greedy { GREEDY_ROUNDS } else { EXTREMAL_STEPS };
        Ok(Mapper { net, method, layer, head: head.ok().filter(|_| method == Method::Cam), cut, cells, masks: RISE_MASKS, seed: 0, steps })
    }

    /// An occlusion map's grid or the grid of RISE's or extremal
    /// perturbation's masks, `cells` × `cells` over the view (at most one cell a pixel).
    pub fn with_cells(mut self, cells: usize) -> Result<Self, String> {
        let i = &self.net.spec.input;
        if cells == 0 || cells > i.height.min(i.width) {
            return Err(format!("a {} grid needs 1 to {} cells a side (the input is {} × {}), not {cells}", self.method, i.height.min(i.width), i.height, i.width));
        }
        self.cells = cells;
        Ok(self)
    }

    /// The grid of an occlusion map or of RISE's masks, `cells` a side
    /// where given (else the method's default), and RISE's masks a view and
    /// their seed; the other methods have no grid and ignore them.
    pub fn with_grid(self, cells: Option<usize>, masks: usize, seed: u64) -> Result<Self, String> {
        let mapper = match cells {
            Some(cells) => self.with_cells(cells)?,
            None => self,
        };
        mapper.with_masks(masks, seed)
    }

    /// RISE's masks a view (at least 2, for a slope) and their seed.
    pub fn with_masks(mut self, masks: usize, seed: u64) -> Result<Self, String> {
        if masks < 2 {
            return Err(format!("RISE needs at least 2 masks a view, not {masks}"));
        }
        (self.masks, self.seed) = (masks, seed);
        Ok(self)
    }

    /// Extremal perturbation's gradient steps a mask, or greedy deletion's
    /// rounds (at least 1).
    pub fn with_steps(mut self, steps: usize) -> Result<Self, String> {
        if steps == 0 {
            return Err(format!("{} needs at least 1 {}", self.method, if self.method == Method::Greedy { "round" } else { "gradient step" }));
        }
        self.steps = steps;
        Ok(self)
    }

    /// [`Self::with_steps`] where given, else the method's default.
    pub fn with_iterations(self, steps: Option<usize>) -> Result<Self, String> {
        match steps {
            Some(steps) => self.with_steps(steps),
            None => Ok(self),
        }
    }

    /// Cells a side of the grid whose cells a random baseline of the map's
    /// granularity deletes, where that is not the map's own grid: RISE's
    /// map is at the view's resolution but varies smoothly over its masks'
    /// cells, so random pixels would be a finer (and harder) baseline than
    /// the blobs its order deletes.
    pub fn baseline_cells(&self) -> Option<usize> {
        matches!(self.method, Method::Rise | Method::Extremal | Method::Greedy).then_some(self.cells)
    }

    /// What is mapped, for people: the layer, or the occlusion or RISE grid.
    pub fn describe_layer(&self) -> String {
        match self.method {
            Method::Occlusion => format!("{}, {} × {} cells", self.layer, self.cells, self.cells),
            Method::Rise => format!("{}, {} masks of {} × {} cells", self.layer, self.masks, self.cells, self.cells),
            Method::Extremal => format!("{}, masks of {} × {} cells, {} steps", self.layer, self.cells, self.cells, self.steps),
            // No more rounds than cells: a round deletes at least one.
            Method::Greedy => format!("{}, {} × {} cells in {} rounds", self.layer, self.cells, self.cells, self.steps.min(self.cells * self.cells)),
            _ => self.layer.clone(),
        }
    }

    /// Each view's map and log-odds, for a batch of views (N × C × H × W).
    pub fn maps(&self, input: Tensor<4>) -> (Vec<Grid>, Vec<f32>) {
        let logits_name = self.net.spec.logits_blob().to_string();
        let (features, alphas, log_odds) = match self.method {
            Method::Cam => {
                let head = self.head.as_ref().expect("CAM has its head");
                let mut blobs = self.net.blobs(input, &[self.layer.as_str(), logits_name.as_str()]).expect("blobs checked");
                let logits = blobs.remove(&logits_name).expect("logits");
                let features = blobs.remove(&self.layer).expect("features");
                let n = features.dims()[0];
                (features, vec![head.log_odds_weights(); n], log_odds(&logits))
            }
            Method::GradCam => self.gradients(input, &logits_name),
            Method::Occlusion => return self.occlusion(input),
            Method::Rise => return self.rise(input),
            Method::Extremal => return self.extremal(input),
            Method::Greedy => return self.greedy(input),
        };
        let [n, c, h, w] = features.dims();
        let a = to_f32s(&features);
        let grids = (0..n)
            .map(|i| {
                let mut values = vec![0.0f32; h * w];
                for (ch, alpha) in alphas[i].iter().enumerate().take(c) {
                    let plane = &a[(i * c + ch) * h * w..(i * c + ch + 1) * h * w];
                    for (v, x) in values.iter_mut().zip(plane) {
                        *v += alpha * x;
                    }
                }
                Grid { height: h, width: w, values }
            })
            .collect();
        (grids, log_odds)
    }

    /// Grad-CAM's pass: the layer's value, each view's α (the log-odds'
    /// gradient summed over positions) and the log-odds.
    fn gradients(&self, input: Tensor<4>, logits_name: &str) -> (Tensor<4>, Vec<Vec<f32>>, Vec<f32>) {
        let (start, needed) = &self.cut;
        let wanted: Vec<&str> = needed.iter().map(String::as_str).collect();
        let before = self.net.forward_with(&self.net.params, input, &mut Mode::Test, &wanted);
        let features = before[&self.layer].clone();
        let tracked = features.clone().autodiff().require_grad();
        let blobs: HashMap<String, Tensor<4>> = before.into_iter().map(|(k, v)| if k == self.layer { (k, tracked.clone()) } else { (k, v.autodiff()) }).collect();
        let params = self.net.untracked_autodiff_params();
        let logits = self.net.forward_from(&params, blobs, *start, &mut Mode::Test, &[logits_name]).remove(logits_name).expect("logits");
        let [n, k, _, _] = logits.dims();
        let flat = logits.reshape([n, k]);
        let score = flat.clone().slice([0..n, POSITIVE..POSITIVE + 1]).sum() - flat.clone().slice([0..n, NEGATIVE..NEGATIVE + 1]).sum();
        let grads = score.backward();
        let g = tracked.grad(&grads).expect("the mapped layer is on the path to the logits");
        let [_, c, h, w] = g.dims();
        let g = to_f32s(&g);
        let alphas = (0..n).map(|i| (0..c).map(|ch| g[(i * c + ch) * h * w..(i * c + ch + 1) * h * w].iter().sum()).collect()).collect();
        let values = to_f32s(&flat);
        (features, alphas, (0..n).map(|i| values[i * k + POSITIVE] - values[i * k + NEGATIVE]).collect())
    }

    /// Occlusion's passes: each view with each cell in turn at the mean
    /// colour (0 after mean subtraction); a cell's value is the log-odds of
    /// the whole view minus the log-odds without the cell.
    fn occlusion(&self, input: Tensor<4>) -> (Vec<Grid>, Vec<f32>) {
        let [_, c, h, w] = input.dims();
        let data = to_f32s(&input);
        let view_len = c * h * w;
        let g = self.cells;
        let whole = self.log_odds_of(input);
        let cells: Vec<usize> = (0..g * g).collect();
        let grids = data
            .chunks(view_len)
            .zip(&whole)
            .map(|(view, &base)| {
                let mut values = Vec::with_capacity(g * g);
                for chunk in cells.chunks(OCCLUSION_BATCH) {
                    let mut batch = Vec::with_capacity(chunk.len() * view_len);
                    for &cell in chunk {
                        let start = batch.len();
                        batch.extend_from_slice(view);
                        clear_cell(&mut batch[start..], cell, g, h, w);
                    }
                    values.extend(self.log_odds_of(self.net.input(batch, self.net.device())).into_iter().map(|without| base - without));
                }
                Grid { height: g, width: g, values }
            })
            .collect();
        (grids, whole)
    }
}

impl Mapper<'_> {
    /// RISE's passes: each view under each mask; a position's value is the
    /// slope of P(positive) on the masks' values there (see the module's
    /// note), at the view's resolution.
    fn rise(&self, input: Tensor<4>) -> (Vec<Grid>, Vec<f32>) {
        let [_, c, h, w] = input.dims();
        let data = to_f32s(&input);
        let view_len = c * h * w;
        let whole = self.log_odds_of(input);
        let masks = rise_masks(self.cells, self.masks, h, w, self.seed);
        // The masks' mean and spread per position: the same for every view.
        let n = masks.len() as f64;
        let mut mean = vec![0.0f64; h * w];
        for m in &masks {
            mean.iter_mut().zip(m).for_each(|(s, &v)| *s += v as f64 / n);
        }
        let mut spread = vec![0.0f64; h * w];
        for m in &masks {
            spread.iter_mut().zip(m.iter().zip(&mean)).for_each(|(s, (&v, &mu))| *s += (v as f64 - mu).powi(2));
        }
        let grids = data
            .chunks(view_len)
            .map(|view| {
                let mut p_positive = Vec::with_capacity(masks.len());
                for chunk in masks.chunks(OCCLUSION_BATCH) {
                    let mut batch = Vec::with_capacity(chunk.len() * view_len);
                    for mask in chunk {
                        // Mean-subtracted input: scaling toward 0 blends toward the mean colour.
                        for plane in view.chunks(h * w) {
                            batch.extend(plane.iter().zip(mask).map(|(&x, &m)| x * m));
                        }
                    }
                    p_positive.extend(self.log_odds_of(self.net.input(batch, self.net.device())).into_iter().map(sigmoid));
                }
                let p_mean = p_positive.iter().map(|&p| p as f64).sum::<f64>() / n;
                let mut covariance = vec![0.0f64; h * w];
                for (mask, &p) in masks.iter().zip(&p_positive) {
                    let dp = p as f64 - p_mean;
                    covariance.iter_mut().zip(mask.iter().zip(&mean)).for_each(|(s, (&v, &mu))| *s += dp * (v as f64 - mu));
                }
                let values = covariance.iter().zip(&spread).map(|(&cov, &var)| if var > 0.0 { (cov / var) as f32 } else { 0.0 }).collect();
                Grid { height: h, width: w, values }
            })
            .collect();
        (grids, whole)
    }
}

/// `count` RISE masks of `height` × `width`, values in [0, 1], from `seed`:
/// each a `cells` × `cells` grid of 0/1 drawn with probability ½, upsampled
/// bilinearly over one cell more than the view (cell centres the knots) and
/// shifted by a uniform fraction of a cell each way.
pub fn rise_masks(cells: usize, count: usize, height: usize, width: usize, seed: u64) -> Vec<Vec<f32>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (cell_h, cell_w) = (height.div_ceil(cells) as f32, width.div_ceil(cells) as f32);
    let knots = cells + 1;
    (0..count)
        .map(|_| {
            let grid: Vec<f32> = (0..knots * knots).map(|_| if rng.gen_bool(0.5) { 1.0 } else { 0.0 }).collect();
            let (dy, dx) = (rng.gen_range(0.0..cell_h), rng.gen_range(0.0..cell_w));
            // Along one axis: the knots either side of a pixel and the weight of the second.
            let axis = |pos: f32, cell: f32| {
                let g = (pos / cell - 0.5).clamp(0.0, (knots - 1) as f32);
                let i = (g.floor() as usize).min(knots - 2);
                (i, g - i as f32)
            };
            let cols: Vec<(usize, f32)> = (0..width).map(|x| axis(x as f32 + 0.5 + dx, cell_w)).collect();
            let mut mask = Vec::with_capacity(height * width);
            for y in 0..height {
                let (i, ty) = axis(y as f32 + 0.5 + dy, cell_h);
                for &(j, tx) in &cols {
                    let at = |r: usize, c: usize| grid[r * knots + c];
                    let top = at(i, j) * (1.0 - tx) + at(i, j + 1) * tx;
                    let bottom = at(i + 1, j) * (1.0 - tx) + at(i + 1, j + 1) * tx;
                    mask.push(top * (1.0 - ty) + bottom * ty);
                }
            }
            mask
        })
        .collect()
}

/// The rows and columns of cell `cell` (row-major) of a `cells` × `cells`
/// grid over a `height` × `width` view; cells differ by at most a pixel.
pub fn cell_rect(cell: usize, cells: usize, height: usize, width: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let (r, c) = (cell / cells, cell % cells);
    (r * height / cells..(r + 1) * height / cells, c * width / cells..(c + 1) * width / cells)
}

/// Sets cell `cell` of a `cells` × `cells` grid to the mean colour (0 after
/// mean subtraction) in every channel of `view` (channels × `height` × `width`):
/// what occlusion, greedy deletion and the deletion test delete.
pub(crate) fn clear_cell(view: &mut [f32], cell: usize, cells: usize, height: usize, width: usize) {
    let (rows, cols) = cell_rect(cell, cells, height, width);
    for channel in view.chunks_mut(height * width) {
        for y in rows.clone() {
            channel[y * width + cols.start..y * width + cols.end].fill(0.0);
        }
    }
}

impl Mapper<'_> {
    /// The log-odds of each of a batch of views, in test mode.
    fn log_odds_of(&self, views: Tensor<4>) -> Vec<f32> {
        let logits_name = self.net.spec.logits_blob();
        let mut blobs = self.net.blobs(views, &[logits_name]).expect("logits blob");
        log_odds(&blobs.remove(logits_name).expect("logits"))
    }
}

fn log_odds(logits: &Tensor<4>) -> Vec<f32> {
    let [n, k, _, _] = logits.dims();
    let v = to_f32s(logits);
    (0..n).map(|i| v[i * k + POSITIVE] - v[i * k + NEGATIVE]).collect()
}

/// The last blob (in network order) with more than one position: where
/// Grad-CAM looks by default (the last convolution's output).
fn last_spatial_blob(net: &Net) -> Option<String> {
    let shapes = net.spec.infer_shapes().ok()?;
    net.spec.trunk_blobs().into_iter().rev().find(|b| shapes.blobs.get(b).is_some_and(|s| s.len() == 3 && s[1] * s[2] > 1) && net.cut_after(b).is_some())
}

/// An image's map on its stored (warped) image.
#[derive(Debug, Clone)]
pub struct ImageMap {
    /// Side × side, the stored image's size; 0 where no view reached.
    pub map: Grid,
    /// P(positive) averaged over the views (as `scoring::probabilities` does).
    pub p_positive: f32,
    pub views: usize,
}

/// The map of one stored image over its views.
pub fn image_map(mapper: &Mapper, pre: &Preprocess, stored: &RgbImage, views: Views) -> ImageMap {
    let crops = views.crops(pre);
    let mut data = vec![0.0f32; crops.len() * pre.view_len()];
    for (view, crop) in data.chunks_mut(pre.view_len()).zip(&crops) {
        pre.write_view(stored, *crop, view);
    }
    let (grids, log_odds) = mapper.maps(mapper.net.input(data, mapper.net.device()));
    let side = pre.stored_size();
    let (mut sum, mut count) = (vec![0.0f32; side * side], vec![0u32; side * side]);
    for (grid, crop) in grids.iter().zip(&crops) {
        let up = grid.resized(crop.size, crop.size);
        let up = if crop.mirror { up.mirrored() } else { up };
        for y in 0..crop.size {
            for x in 0..crop.size {
                let at = (crop.y + y) * side + crop.x + x;
                sum[at] += up.values[y * crop.size + x];
                count[at] += 1;
            }
        }
    }
    let values = sum.iter().zip(&count).map(|(s, &n)| if n == 0 { 0.0 } else { s / n as f32 }).collect();
    let p_positive = log_odds.iter().map(|&l| sigmoid(l)).sum::<f32>() / log_odds.len() as f32;
    ImageMap { map: Grid { height: side, width: side, values }, p_positive, views: crops.len() }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_masks_are_seeded_smooth_and_half_kept() {
        let masks = rise_masks(4, 200, 30, 20, 3);
        assert_eq!(masks, rise_masks(4, 200, 30, 20, 3), "the same seed, the same masks");
        assert_ne!(masks, rise_masks(4, 200, 30, 20, 4));
        assert!(masks.iter().all(|m| m.len() == 600 && m.iter().all(|v| (0.0..=1.0).contains(v))));
        // Bilinear between 0/1 knots a cell (8 × 5 pixels) apart: neighbours differ by at most 1/5.
        for m in &masks {
            for y in 0..30 {
                for x in 1..20 {
                    assert!((m[y * 20 + x] - m[y * 20 + x - 1]).abs() <= 0.2 + 1e-6);
                }
            }
        }
        // Each knot is kept with probability ½: the mean over masks near ½ everywhere.
        let mean: f32 = masks.iter().map(|m| m.iter().sum::<f32>() / 600.0).sum::<f32>() / 200.0;
        assert!((mean - 0.5).abs() < 0.05, "mean kept {mean}");
    }

    #[test]
    fn grids_resize_and_mirror() {
        let g = Grid { height: 2, width: 3, values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        assert_eq!(g.mirrored().values, [3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        assert_eq!(g.peak(), 6.0);
        let up = g.resized(6, 4);
        assert_eq!((up.width, up.height, up.values.len()), (6, 4, 24));
        // Bilinear: values stay within the grid's range, corners near their cells.
        assert!(up.values.iter().all(|v| (1.0 - 1e-5..=6.0 + 1e-5).contains(v)));
        assert!(up.values[0] < up.values[5] && up.values[0] < up.values[18]);
        // Signed values outside [0, 1] survive (the image crate clamps float pixels).
        let signed = Grid { height: 1, width: 2, values: vec![-3.0, 5.0] }.resized(4, 1);
        assert!((signed.values[0] + 3.0).abs() < 1e-5 && (signed.values[3] - 5.0).abs() < 1e-5, "{:?}", signed.values);
    }
}
