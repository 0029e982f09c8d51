//! 2-D convolution on the CPU, forward and both gradients, on NCHW `f32`
//! slices: Caffe's scheme (per image, unfold the input into columns and
//! multiply by the weights with one `gemm` call per group) for the forward
//! pass, the input gradient (`Wᵀ · dY`, folded back) and the weight gradient
//! (`dY · colsᵀ`, summed over images). Pointwise convolutions (1×1, stride 1,
//! no padding) skip the unfolding: the image already is the column matrix.
//! Depthwise convolutions (one channel per group) are direct loops
//! ([`super::depthwise`]).
//!
//! Why by hand: burn's CPU backend computes the input gradient as a
//! transposed convolution and the weight gradient as a convolution whose
//! kernel is the whole output map, with a loop over groups: 3–10× slower than
//! the two matrix products here (measured by `deepsent bench --profile`).
//! Images are spread over the threads (each `gemm` runs on one), which keeps
//! both cores busy at every layer size; a batch smaller than the thread count
//! hands the threads to `gemm` instead.

use super::gemm::{matmul, matmul_into, Mat};
use super::{space_to_depth, winograd};
use super::uninit::{as_writable, assume_written};
use std::mem::MaybeUninit;
use rayon::prelude::*;

/// The shape of one convolution: input N × C × H × W, weights O × C/groups × KH × KW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub outputs: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding before (top, left); the padding after only shows in the output size.
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl Geometry {
    fn in_per_group(&self) -> usize {
        self.channels / self.groups
    }
    fn out_per_group(&self) -> usize {
        self.outputs / self.groups
    }
    fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn out_plane(&self) -> usize {
        self.out_height * self.out_width
    }
    pub fn out_image_len(&self) -> usize {
        self.outputs * self.out_plane()
    }
    /// Rows of a group's column matrix: C/groups × KH × KW.
    fn col_rows(&self) -> usize {
        self.in_per_group() * self.kernel[0] * self.kernel[1]
    }
    fn weight_len(&self) -> usize {
        self.outputs * self.col_rows()
    }
    /// 1×1, stride 1, no padding: the input plane is the column matrix.
    fn pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pad == [0, 0] && self.out_height == self.height && self.out_width == self.width
    }
    fn depthwise(&self) -> bool {
        self.groups > 1 && self.in_per_group() == 1 && self.out_per_group() == 1
    }
    /// For output coordinate `o` along an axis and kernel tap `k`: the input coordinate, if inside.
    #[inline]
    pub(super) fn input_at(o: usize, k: usize, stride: usize, pad: usize, dilation: usize, size: usize) -> Option<usize> {
        let i = (o * stride + k * dilation) as isize - pad as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }
    /// The range of output coordinates whose input coordinate for tap `k` is inside `0..size`.
    #[inline]
    pub(super) fn valid_outputs(k: usize, stride: usize, pad: usize, dilation: usize, size: usize, out: usize) -> (usize, usize) {
        let offset = (k * dilation) as isize - pad as isize;
        // o·stride + offset ≥ 0  and  o·stride + offset ≤ size − 1
        let lo = if offset >= 0 { 0 } else { ((-offset) as usize).div_ceil(stride) };
        let hi_num = size as isize - 1 - offset;
        let hi = if hi_num < 0 { 0 } else { ((hi_num as usize) / stride + 1).min(out) };
        (lo.min(hi), hi)
    }
}

/// Where each image's output (its O × OH × OW values) lies in a buffer that
/// holds more than this convolution's: at `n · stride + offset` for image n.
/// Two convolutions of one input write their channels side by side this way
/// (a Fire module's expand layers and their concatenation), and read their
/// output gradients back in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub stride: usize,
    pub offset: usize,
}

impl Geometry {
    /// The output buffer holds this convolution's values alone.
    pub fn whole(&self) -> Block {
        Block { stride: self.out_image_len(), offset: 0 }
    }
}

/// Image `n`'s output values within a buffer laid out as `block`.
fn image_block<'a>(g: &Geometry, block: Block, buffer: &'a [f32], n: usize) -> &'a [f32] {
    &buffer[n * block.stride + block.offset..][..g.out_image_len()]
}

/// Unfolds channels `c0..c0+C/groups` of one image into `cols` (col_rows × out_plane).
fn im2col(g: &Geometry, image: &[f32], c0: usize, cols: &mut [f32]) {
    let [kh, kw] = g.kernel;
    let plane = g.height * g.width;
    let (oh, ow) = (g.out_height, g.out_width);
    for ci in 0..g.in_per_group() {
        let src = &image[(c0 + ci) * plane..(c0 + ci + 1) * plane];
        for ki in 0..kh {
            for kj in 0..kw {
                let row = &mut cols[((ci * kh + ki) * kw + kj) * oh * ow..][..oh * ow];
                let (x_lo, x_hi) = Geometry::valid_outputs(kj, g.stride[1], g.pad[1], g.dilation[1], g.width, ow);
                for oy in 0..oh {
                    let dst = &mut row[oy * ow..(oy + 1) * ow];
                    let Some(iy) = Geometry::input_at(oy, ki, g.stride[0], g.pad[0], g.dilation[0], g.height) else {
                        dst.fill(0.0);
                        continue;
                    };
                    dst[..x_lo].fill(0.0);
                    dst[x_hi..].fill(0.0);
                    let line = &src[iy * g.width..(iy + 1) * g.width];
                    let ix0 = x_lo * g.stride[1] + kj * g.dilation[1] - g.pad[1];
                    if g.stride[1] == 1 {
                        dst[x_lo..x_hi].copy_from_slice(&line[ix0..ix0 + (x_hi - x_lo)]);
                    } else {
                        for (k, d) in dst[x_lo..x_hi].iter_mut().enumerate() {
                            *d = line[ix0 + k * g.stride[1]];
                        }
                    }
                }
            }
        }
    }
}

/// Folds `cols` back onto channels `c0..` of one image's gradient, adding (the inverse of [`im2col`]).
fn col2im(g: &Geometry, cols: &[f32], c0: usize, image: &mut [f32]) {
    let [kh, kw] = g.kernel;
    let plane = g.height * g.width;
    let (oh, ow) = (g.out_height, g.out_width);
    for ci in 0..g.in_per_group() {
        let dst = &mut image[(c0 + ci) * plane..(c0 + ci + 1) * plane];
        for ki in 0..kh {
            for kj in 0..kw {
                let row = &cols[((ci * kh + ki) * kw + kj) * oh * ow..][..oh * ow];
                let (x_lo, x_hi) = Geometry::valid_outputs(kj, g.stride[1], g.pad[1], g.dilation[1], g.width, ow);
                if x_lo >= x_hi {
                    continue;
                }
                for oy in 0..oh {
                    let Some(iy) = Geometry::input_at(oy, ki, g.stride[0], g.pad[0], g.dilation[0], g.height) else { continue };
                    let src = &row[oy * ow + x_lo..oy * ow + x_hi];
                    let line = &mut dst[iy * g.width..(iy + 1) * g.width];
                    let ix0 = x_lo * g.stride[1] + kj * g.dilation[1] - g.pad[1];
                    if g.stride[1] == 1 {
                        for (d, s) in line[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (k, s) in src.iter().enumerate() {
                            line[ix0 + k * g.stride[1]] += s;
                        }
                    }
                }
            }
        }
    }
}

/// Whether 3×3 and 5×5 convolutions of stride 1, and the strided ones that
/// become such (see [`space_to_depth`]), go through [`winograd`] (the
/// default), or all through the column matrix: `DEEPSENT_WINOGRAD=off`, to
/// measure one against the other.
fn winograd_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("DEEPSENT_WINOGRAD").map_or(true, |v| v != "off"))
}

/// How images are spread: over threads when there are enough, otherwise inside each gemm.
fn gemm_threads(g: &Geometry) -> usize {
    let t = rayon::current_num_threads();
    if g.batch >= t { 1 } else { t }
}

/// Forward: `out` (N × O × OH × OW) from `x`, `weight` (O × C/groups × KH × KW)
/// and an optional bias, then a ReLU clipped at `relu_max` if given.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>, relu_max: Option<f32>, out: &mut [f32]) {
    // SAFETY: forward_into stores only initialised values.
    forward_into(g, x, weight, bias, relu_max, unsafe { as_writable(out) }, g.whole())
}

/// [`forward`] into the `block` of each image of a larger `out`, which may
/// be memory not yet written (a new blob need not be zeroed first: clearing
/// it was 7–9 % of a training step); the block is initialised afterwards and
/// the rest of `out` is left as it is.
pub fn forward_into(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>, relu_max: Option<f32>, out: &mut [MaybeUninit<f32>], block: Block) {
    assert_eq!(x.len(), g.batch * g.image_len());
    assert_eq!(weight.len(), g.weight_len());
    assert_eq!(out.len(), g.batch * block.stride);
    assert!(block.offset + g.out_image_len() <= block.stride);
    let plane = g.out_plane();
    // Bias and activation per image, while its output is still in cache.
    let finish = |y: &mut [f32]| {
        for (o, p) in y.chunks_mut(plane).enumerate() {
            let b = bias.map_or(0.0, |b| b[o]);
            match relu_max {
                None if b != 0.0 => p.iter_mut().for_each(|v| *v += b),
                None => {}
                Some(max) => p.iter_mut().for_each(|v| *v = (*v + b).max(0.0).min(max)),
            }
        }
    };
    if winograd::applies(g) && winograd_on() {
        return winograd::forward_into(g, x, Block { stride: g.image_len(), offset: 0 }, weight, bias, relu_max, out, block);
    }
    if let Some(r) = space_to_depth::geometry(g).filter(|_| winograd_on()) {
        return space_to_depth::forward_into(g, &r, x, weight, bias, relu_max, out, block);
    }
    if g.depthwise() {
        assert_eq!(block, g.whole(), "a depthwise convolution writes a buffer of its own");
        super::depthwise::forward(g, x, weight, out);
        // SAFETY: the depthwise forward writes every value.
        let out = unsafe { assume_written(out) };
        out.par_chunks_mut(g.out_image_len()).for_each(finish);
        return;
    }
    let threads = gemm_threads(g);
    let (rows, og) = (g.col_rows(), g.out_per_group());
    out.par_chunks_mut(block.stride).zip(x.par_chunks(g.image_len())).for_each_init(
        || vec![0.0f32; if g.pointwise() { 0 } else { rows * plane }],
        |cols, (y, image)| {
            let y = &mut y[block.offset..block.offset + g.out_image_len()];
            for group in 0..g.groups {
                let b = if g.pointwise() {
                    Mat::rows(&image[group * rows * plane..], plane)
                } else {
                    im2col(g, image, group * g.in_per_group(), cols);
                    Mat::rows(cols, plane)
                };
                let w = Mat::rows(&weight[group * og * rows..], rows);
                matmul_into(&mut y[group * og * plane..(group + 1) * og * plane], [og, plane, rows], w, b, threads);
            }
            // SAFETY: the groups' products wrote every value of the block.
            finish(unsafe { assume_written(y) });
        },
    );
}

/// The gradient through a ReLU clipped at `max`, in place: kept where 0 < output < max.
pub fn relu_backward(output: &[f32], max: f32, grad: &mut [f32]) {
    assert_eq!(output.len(), grad.len());
    grad.par_chunks_mut(1 << 16).zip(output.par_chunks(1 << 16)).for_each(|(g, y)| {
        // `&`, not `&&`: both comparisons on every value, no branch, so it vectorises.
        for (g, &y) in g.iter_mut().zip(y) {
            *g = if (y > 0.0) & (y < max) { *g } else { 0.0 };
        }
    });
}

/// Input gradient: `dx` (N × C × H × W) from the output gradient `dy`.
pub fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32], dx: &mut [f32]) {
    input_grad_from(g, weight, dy, g.whole(), dx)
}

/// [`input_grad`] from the `block` of each image of a larger `dy`.
pub fn input_grad_from(g: &Geometry, weight: &[f32], dy: &[f32], block: Block, dx: &mut [f32]) {
    assert_eq!(dy.len(), g.batch * block.stride);
    assert_eq!(dx.len(), g.batch * g.image_len());
    if g.depthwise() {
        assert_eq!(block, g.whole(), "a depthwise convolution reads a gradient of its own");
        return super::depthwise::input_grad(g, weight, dy, dx);
    }
    if let Some(gt) = winograd::input_grad_geometry(g).filter(|_| winograd_on()) {
        let flipped = winograd::flipped_weights(g, weight);
        // SAFETY: the forward pass writes every value of dx.
        return winograd::forward_into(&gt, dy, block, &flipped, None, None, unsafe { as_writable(dx) }, gt.whole());
    }
    let threads = gemm_threads(g);
    let (rows, plane, og) = (g.col_rows(), g.out_plane(), g.out_per_group());
    dx.par_chunks_mut(g.image_len()).zip(dy.par_chunks(block.stride)).for_each_init(
        || vec![0.0f32; if g.pointwise() { 0 } else { rows * plane }],
        |cols, (dx, dy)| {
            let dy = &dy[block.offset..block.offset + g.out_image_len()];
            if !g.pointwise() {
                dx.fill(0.0);
            }
            for group in 0..g.groups {
                let wt = Mat::rows(&weight[group * og * rows..], rows).transposed();
                let d = Mat::rows(&dy[group * og * plane..], plane);
                if g.pointwise() {
                    matmul(&mut dx[group * rows * plane..(group + 1) * rows * plane], false, [rows, plane, og], wt, d, threads);
                } else {
                    matmul(cols, false, [rows, plane, og], wt, d, threads);
                    col2im(g, cols, group * g.in_per_group(), dx);
                }
            }
        },
    );
}

/// Weight gradient `dw` (O × C/groups × KH × KW), summed over the batch.
pub fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    weight_grad_from(g, x, dy, g.whole(), dw)
}

/// [`weight_grad`] from the `block` of each image of a larger `dy`.
pub fn weight_grad_from(g: &Geometry, x: &[f32], dy: &[f32], block: Block, dw: &mut [f32]) {
    assert_eq!(dw.len(), g.weight_len());
    assert_eq!(dy.len(), g.batch * block.stride);
    if g.depthwise() {
        assert_eq!(block, g.whole(), "a depthwise convolution reads a gradient of its own");
        return super::depthwise::weight_grad(g, x, dy, dw);
    }
    let (rows, plane, og) = (g.col_rows(), g.out_plane(), g.out_per_group());
    let threads = rayon::current_num_threads();
    // One partial sum per thread's share of the images, added at the end.
    let shares = threads.min(g.batch).max(1);
    let per_share = g.batch.div_ceil(shares);
    let inner = if shares < threads { threads } else { 1 };
    let partials: Vec<Vec<f32>> = (0..shares)
        .into_par_iter()
        .map(|s| {
            let mut acc = vec![0.0f32; g.weight_len()];
            let mut cols = vec![0.0f32; if g.pointwise() { 0 } else { rows * plane }];
            for n in s * per_share..((s + 1) * per_share).min(g.batch) {
                let image = &x[n * g.image_len()..(n + 1) * g.image_len()];
                let dy = image_block(g, block, dy, n);
                for group in 0..g.groups {
                    let c = if g.pointwise() {
                        Mat::rows(&image[group * rows * plane..], plane)
                    } else {
                        im2col(g, image, group * g.in_per_group(), &mut cols);
                        Mat::rows(&cols, plane)
                    };
                    let d = Mat::rows(&dy[group * og * plane..], plane);
                    matmul(&mut acc[group * og * rows..(group + 1) * og * rows], true, [og, rows, plane], d, c.transposed(), inner);
                }
            }
            acc
        })
        .collect();
    dw.fill(0.0);
    for p in partials {
        dw.iter_mut().zip(p).for_each(|(d, v)| *d += v);
    }
}

/// Bias gradient: the output gradient summed over images and positions, per channel.
pub fn bias_grad(batch: usize, outputs: usize, plane: usize, dy: &[f32], db: &mut [f32]) {
    bias_grad_from(batch, outputs, plane, dy, Block { stride: outputs * plane, offset: 0 }, db)
}

/// [`bias_grad`] from the `block` of each image of a larger `dy`.
pub fn bias_grad_from(batch: usize, outputs: usize, plane: usize, dy: &[f32], block: Block, db: &mut [f32]) {
    assert_eq!(dy.len(), batch * block.stride);
    let sums: Vec<f64> = (0..outputs)
        .into_par_iter()
        .map(|o| (0..batch).map(|n| sum_f64(&dy[n * block.stride + block.offset + o * plane..][..plane])).sum())
        .collect();
    db.iter_mut().zip(sums).for_each(|(d, s)| *d = s as f32);
}

/// Σ values in f64, in 8 lanes: one running sum was a chain of dependent
/// additions, 4 cycles a value, over every convolution output (SqueezeNet's
/// training step is 7 % faster without it). In f64 the order moves the sum by about
/// 1e-16 of itself, far below the f32 it is rounded to.
fn sum_f64(values: &[f32]) -> f64 {
    const LANES: usize = 8;
    let mut lanes = [0.0f64; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest: f64 = chunks.remainder().iter().map(|&v| v as f64).sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v as f64;
        }
    }
    lanes.iter().sum::<f64>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The definition, loop by loop: y[n,o,oy,ox] = Σ w[o,ci,ki,kj] · x[n, group·C/g + ci, iy, ix].
    /// Returns the forward output and, for an output gradient `dy`, both gradients.
    fn reference(g: &Geometry, x: &[f32], w: &[f32], dy: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (cg, og) = (g.in_per_group(), g.out_per_group());
        let mut y = vec![0.0f64; g.batch * g.out_image_len()];
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; w.len()];
        for n in 0..g.batch {
            for o in 0..g.outputs {
                let group = o / og;
                for oy in 0..g.out_height {
                    for ox in 0..g.out_width {
                        let yi = ((n * g.outputs + o) * g.out_height + oy) * g.out_width + ox;
                        for ci in 0..cg {
                            let c = group * cg + ci;
                            for ki in 0..g.kernel[0] {
                                for kj in 0..g.kernel[1] {
                                    let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize - g.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.height as isize || ix >= g.width as isize {
                                        continue;
                                    }
                                    let xi = ((n * g.channels + c) * g.height + iy as usize) * g.width + ix as usize;
                                    let wi = ((o * cg + ci) * g.kernel[0] + ki) * g.kernel[1] + kj;
                                    y[yi] += w[wi] as f64 * x[xi] as f64;
                                    dx[xi] += w[wi] as f64 * dy[yi] as f64;
                                    dw[wi] += x[xi] as f64 * dy[yi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        (y, dx, dw)
    }

    fn geometry(batch: usize, channels: usize, size: [usize; 2], outputs: usize, kernel: [usize; 2], stride: [usize; 2], pad: [(usize, usize); 2], dilation: [usize; 2], groups: usize) -> Geometry {
        let out = |a: usize| (size[a] + pad[a].0 + pad[a].1 - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1;
        Geometry { batch, channels, height: size[0], width: size[1], outputs, kernel, stride, pad: [pad[0].0, pad[1].0], dilation, groups, out_height: out(0), out_width: out(1) }
    }

    fn close(what: &str, g: &Geometry, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what} {g:?}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()), "{what} [{i}]: {a} vs {b} for {g:?}");
        }
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        let cases = [
            // CaffeNet conv1-like: big kernel, stride 4, no padding.
            geometry(2, 3, [19, 19], 4, [11, 11], [4, 4], [(0, 0), (0, 0)], [1, 1], 1),
            // Grouped, padded (CaffeNet conv2/4/5).
            geometry(3, 4, [7, 6], 6, [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 2),
            // Pointwise (SqueezeNet squeeze/expand1x1), batch 1 (threads inside gemm).
            geometry(1, 5, [4, 4], 3, [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
            geometry(4, 5, [4, 3], 7, [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1),
            // 1×1 with stride 2 and with padding are not pointwise.
            geometry(2, 3, [5, 5], 2, [1, 1], [2, 2], [(0, 0), (0, 0)], [1, 1], 1),
            geometry(2, 3, [3, 3], 2, [1, 1], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
            // TensorFlow "same" padding, one more at the end, stride 2.
            geometry(2, 3, [8, 8], 4, [3, 3], [2, 2], [(0, 1), (0, 1)], [1, 1], 1),
            // Dilation and unequal strides.
            geometry(2, 2, [9, 8], 3, [3, 2], [1, 2], [(2, 2), (1, 1)], [2, 1], 1),
            // Depthwise 3×3 and 5×5 stride 2 with "same" padding (EfficientNet).
            geometry(2, 4, [7, 7], 4, [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 4),
            geometry(3, 3, [9, 9], 3, [5, 5], [2, 2], [(1, 2), (1, 2)], [1, 1], 3),
            // Depthwise with unequal strides, a dilated row and a width the stride does not divide.
            geometry(2, 3, [8, 9], 3, [3, 3], [2, 3], [(1, 1), (2, 2)], [1, 2], 3),
            // A kernel wider than the padded image on one side.
            geometry(1, 2, [2, 9], 2, [3, 3], [1, 1], [(1, 1), (0, 0)], [1, 1], 1),
            // Winograd (3×3 and 5×5, stride 1, ≥ 48 channels a group in and out):
            // sizes that 4×4 tiles overhang, padding 1, 0 and 2, grouped, an
            // uneven padding (its input gradient through the column matrix).
            geometry(2, 48, [9, 11], 50, [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1),
            geometry(3, 96, [6, 5], 100, [3, 3], [1, 1], [(0, 0), (2, 2)], [1, 1], 2),
            geometry(1, 49, [4, 7], 48, [3, 3], [1, 1], [(2, 2), (1, 1)], [1, 1], 1),
            geometry(2, 48, [8, 8], 48, [3, 3], [1, 1], [(0, 1), (1, 0)], [1, 1], 1),
            // 5×5 as four 3×3 pieces (CaffeNet conv2: padding 2, grouped),
            // padding 4 and 0; its input gradient through the column matrix.
            geometry(2, 48, [9, 10], 50, [5, 5], [1, 1], [(2, 2), (2, 2)], [1, 1], 1),
            geometry(2, 96, [7, 6], 100, [5, 5], [1, 1], [(4, 4), (0, 0)], [1, 1], 2),
            // Strided, through Winograd on the input rearranged by blocks:
            // CaffeNet conv1's kernel and stride (its rearranged input 1 row
            // and column past the image), padded unevenly; a 9 × 9 kernel
            // of stride 2, which becomes 5 × 5.
            geometry(2, 3, [35, 34], 48, [11, 11], [4, 4], [(0, 0), (0, 0)], [1, 1], 1),
            geometry(1, 3, [30, 29], 50, [11, 11], [4, 4], [(2, 3), (1, 2)], [1, 1], 1),
            geometry(2, 12, [21, 20], 48, [9, 9], [2, 2], [(1, 1), (0, 2)], [1, 1], 1),
        ];
        // The Winograd cases do go through it, backward too but for the uneven padding and the 5×5.
        assert_eq!(cases.iter().filter(|g| winograd::applies(g)).count(), 6);
        assert_eq!(cases.iter().filter(|g| winograd::input_grad_geometry(g).is_some()).count(), 3);
        assert_eq!(cases.iter().filter(|g| space_to_depth::geometry(g).is_some()).count(), 3);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for g in cases {
            let x: Vec<f32> = (0..g.batch * g.image_len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let bias: Vec<f32> = (0..g.outputs).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let dy: Vec<f32> = (0..g.batch * g.out_image_len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let (mut y_ref, dx_ref, dw_ref) = reference(&g, &x, &w, &dy);
            for (i, v) in y_ref.iter_mut().enumerate() {
                *v += bias[(i / g.out_plane()) % g.outputs] as f64;
            }
            let mut y = vec![f32::NAN; y_ref.len()];
            forward(&g, &x, &w, Some(&bias), None, &mut y);
            close("forward", &g, &y, &y_ref);
            // Fused ReLU6: the same values, clipped.
            let clipped: Vec<f64> = y_ref.iter().map(|v| v.clamp(0.0, 6.0)).collect();
            forward(&g, &x, &w, Some(&bias), Some(6.0), &mut y);
            close("forward with ReLU6", &g, &y, &clipped);
            let mut dx = vec![f32::NAN; x.len()];
            input_grad(&g, &w, &dy, &mut dx);
            close("input gradient", &g, &dx, &dx_ref);
            let mut dw = vec![f32::NAN; w.len()];
            weight_grad(&g, &x, &dy, &mut dw);
            close("weight gradient", &g, &dw, &dw_ref);
            let mut db = vec![f32::NAN; g.outputs];
            bias_grad(g.batch, g.outputs, g.out_plane(), &dy, &mut db);
            let db_ref: Vec<f64> = (0..g.outputs).map(|o| dy.iter().enumerate().filter(|(i, _)| (i / g.out_plane()) % g.outputs == o).map(|(_, &v)| v as f64).sum()).collect();
            close("bias gradient", &g, &db, &db_ref);
        }
    }

    /// Two convolutions of one input written side by side (a Fire module's
    /// expand 1×1 and 3×3): each block holds what the convolution alone
    /// gives, and the gradients read from the blocks are the separate ones,
    /// bit for bit.
    #[test]
    fn convolutions_into_blocks_of_a_shared_buffer() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let a = geometry(3, 4, [5, 6], 3, [1, 1], [1, 1], [(0, 0), (0, 0)], [1, 1], 1);
        let b = geometry(3, 4, [5, 6], 5, [3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1], 1);
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
        let x = draw(a.batch * a.image_len());
        let (wa, wb, ba, bb) = (draw(a.weight_len()), draw(b.weight_len()), draw(a.outputs), draw(b.outputs));
        let stride = a.out_image_len() + b.out_image_len();
        let (block_a, block_b) = (Block { stride, offset: 0 }, Block { stride, offset: a.out_image_len() });
        let mut both = vec![MaybeUninit::new(f32::NAN); a.batch * stride];
        forward_into(&a, &x, &wa, Some(&ba), Some(f32::INFINITY), &mut both, block_a);
        forward_into(&b, &x, &wb, Some(&bb), Some(f32::INFINITY), &mut both, block_b);
        // SAFETY: every value was initialised (to NaN, then by the convolutions).
        let both: Vec<f32> = both.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert!(both.iter().all(|v| !v.is_nan()), "the two blocks cover every image's output");
        let (mut ya, mut yb) = (vec![0.0; a.batch * a.out_image_len()], vec![0.0; b.batch * b.out_image_len()]);
        forward(&a, &x, &wa, Some(&ba), Some(f32::INFINITY), &mut ya);
        forward(&b, &x, &wb, Some(&bb), Some(f32::INFINITY), &mut yb);
        for n in 0..a.batch {
            assert_eq!(image_block(&a, block_a, &both, n), &ya[n * a.out_image_len()..][..a.out_image_len()]);
            assert_eq!(image_block(&b, block_b, &both, n), &yb[n * b.out_image_len()..][..b.out_image_len()]);
        }
        let dy = draw(a.batch * stride);
        let split = |g: &Geometry, block: Block| -> Vec<f32> { (0..g.batch).flat_map(|n| image_block(g, block, &dy, n).to_vec()).collect() };
        let (dya, dyb) = (split(&a, block_a), split(&b, block_b));
        for (g, block, w, d) in [(&a, block_a, &wa, &dya), (&b, block_b, &wb, &dyb)] {
            let (mut dx1, mut dx2) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            input_grad_from(g, w, &dy, block, &mut dx1);
            input_grad(g, w, d, &mut dx2);
            assert_eq!(dx1, dx2);
        }
        for (g, block, w, d) in [(&a, block_a, &wa, &dya), (&b, block_b, &wb, &dyb)] {
            let (mut dw1, mut dw2) = (vec![0.0; w.len()], vec![0.0; w.len()]);
            weight_grad_from(g, &x, &dy, block, &mut dw1);
            weight_grad(g, &x, d, &mut dw2);
            assert_eq!(dw1, dw2);
            let (mut db1, mut db2) = (vec![0.0; g.outputs], vec![0.0; g.outputs]);
            bias_grad_from(g.batch, g.outputs, g.out_plane(), &dy, block, &mut db1);
            bias_grad(g.batch, g.outputs, g.out_plane(), d, &mut db2);
            assert_eq!(db1, db2);
        }
    }
}
