//! 3×3 convolutions of stride 1 by Winograd's minimal filtering F(4×4, 3×3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
//! each 4×4 block of outputs comes from its 6×6 input patch with 36
//! multiplications per input–output channel pair instead of 144, so the
//! matrix products, where the time goes, are 4× smaller (2.25–4× in
//! practice, by the share of tiles that overhang the output's edge).
//! A 5×5 kernel is four 3×3 ones (its taps split 3 + 2 each way, the rest
//! zeros) on inputs shifted by 0 and 3: 144 multiplications per 4×4 block
//! instead of 400, the four summed inside the one matrix product.
//!
//! Per chunk of images, in three passes, each vectorised along the tiles:
//! 1. every channel's 6×6 patches to the Winograd domain, `V = Bᵀ d B`;
//! 2. for each of the 36 points ξ, one product `M[ξ] = U[ξ] · V[ξ]` over
//!    the input channels, `U = G w Gᵀ` being the weights transformed once;
//! 3. every output channel back, `Y = Aᵀ M A`, with bias and ReLU.
//! The input gradient of such a convolution is one as well (the output
//! gradient correlated with the flipped, transposed weights), so training
//! uses it twice.
//!
//! Why by hand: neither `gemm` nor burn has a Winograd convolution. The
//! results differ from the direct product's by rounding only (the
//! transforms' coefficients are small): the tests hold it to the same
//! tolerance against the definition as the direct kernel.

use super::conv::{Block, Geometry};
use super::gemm::{matmul, Mat};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Outputs per tile side.
const TILE: usize = 4;
/// Inputs per tile side: TILE + 3 − 1.
const PATCH: usize = 6;
/// Points of the Winograd domain: PATCH².
const POINTS: usize = PATCH * PATCH;
/// Tiles per pass: enough columns for `gemm` to run near its peak, few
/// enough for a channel's patches to stay in cache.
const CHUNK_TILES: usize = 256;
/// Below this many input or output channels per group the products are too
/// thin for the transforms to pay: SqueezeNet's fire4 and fire5 (32
/// squeeze channels) ran 0–13 % slower this way, forward and backward,
/// fire6–9 (48 and 64) 5–24 % faster (`deepsent bench --profile`).
const MIN_CHANNELS: usize = 48;

/// Kernel transform G (6 × 3); the input's Bᵀ and the output's Aᵀ are
/// written out in [`input_1d`] and [`output_1d`] (the tests check them
/// against the matrices).
const G: [[f32; 3]; PATCH] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];
/// Whether this kernel computes `g`'s forward pass: 3×3 or 5×5, stride 1,
/// no dilation, padding less than the kernel (more would leave tiles of
/// padding only), and enough channels per group on both sides. A 5×5 kernel
/// also needs no more inputs than outputs: its input transform, four
/// patches per input channel, then outweighs the product's saving (CaffeNet's
/// conv2: forward, 48 in and 128 out a group, 48 → 36 ms; its input
/// gradient, 128 in and 48 out, 100 → 130 ms).
pub fn applies(g: &Geometry) -> bool {
    let k = g.kernel[0];
    let (cg, og) = (g.channels / g.groups, g.outputs / g.groups);
    (k == 3 || (k == 5 && cg <= og)) && g.kernel[1] == k && g.stride == [1, 1] && g.dilation == [1, 1] && g.pad[0] < k && g.pad[1] < k && cg.min(og) >= MIN_CHANNELS
}

/// 3×3 kernels per side that `g`'s kernel splits into.
fn split(g: &Geometry) -> usize {
    g.kernel[0].div_ceil(3)
}

/// The convolution whose forward pass is `g`'s input gradient, when this
/// kernel computes it: the padding the same before and after, so that the
/// output gradient padded by k − 1 − pad, correlated with the flipped
/// kernel, has the input's size.
pub fn input_grad_geometry(g: &Geometry) -> Option<Geometry> {
    let k = g.kernel[0];
    let symmetric = g.out_height + k - 1 == g.height + 2 * g.pad[0] && g.out_width + k - 1 == g.width + 2 * g.pad[1];
    let gt = Geometry {
        batch: g.batch,
        channels: g.outputs,
        height: g.out_height,
        width: g.out_width,
        outputs: g.channels,
        kernel: g.kernel,
        stride: [1, 1],
        pad: [(k - 1).checked_sub(g.pad[0])?, (k - 1).checked_sub(g.pad[1])?],
        dilation: [1, 1],
        groups: g.groups,
        out_height: g.height,
        out_width: g.width,
    };
    (applies(g) && symmetric && applies(&gt)).then_some(gt)
}

/// `g`'s weights (O × C/groups × k × k) as the weights of its
/// [`input_grad_geometry`] (C × O/groups × k × k): per group transposed,
/// each kernel turned by 180°.
pub fn flipped_weights(g: &Geometry, weight: &[f32]) -> Vec<f32> {
    let (cg, og) = (g.channels / g.groups, g.outputs / g.groups);
    let taps = g.kernel[0] * g.kernel[1];
    let mut flipped = vec![0.0f32; weight.len()];
    for group in 0..g.groups {
        for o in 0..og {
            for c in 0..cg {
                let src = &weight[((group * og + o) * cg + c) * taps..][..taps];
                let dst = &mut flipped[((group * cg + c) * og + o) * taps..][..taps];
                dst.iter_mut().zip(src.iter().rev()).for_each(|(d, &s)| *d = s);
            }
        }
    }
    flipped
}

/// Each k × k kernel as its split² 3×3 kernels, row of pieces after row
/// (taps past the kernel's edge are zeros): O × C/groups × split² × 3 × 3.
fn split_kernels(g: &Geometry, weight: &[f32]) -> Vec<f32> {
    let (k, split) = (g.kernel[0], split(g));
    if split == 1 {
        return weight.to_vec();
    }
    let mut pieces = vec![0.0f32; weight.len() / (k * k) * split * split * 9];
    for (kernel, out) in weight.chunks_exact(k * k).zip(pieces.chunks_exact_mut(split * split * 9)) {
        for (piece, taps) in out.chunks_exact_mut(9).enumerate() {
            let (a, b) = (piece / split * 3, piece % split * 3);
            for i in 0..3 {
                for j in 0..3 {
                    if a + i < k && b + j < k {
                        taps[i * 3 + j] = kernel[(a + i) * k + b + j];
                    }
                }
            }
        }
    }
    pieces
}

/// Forward pass of a convolution where [`applies`]: image n of the input at
/// `x[n · input.stride + input.offset..]`, its output into `block` of
/// `out` (every value of the block written), then bias and a ReLU clipped
/// at `relu_max` if given.
#[allow(clippy::too_many_arguments)]
pub fn forward_into(g: &Geometry, x: &[f32], input: Block, weight: &[f32], bias: Option<&[f32]>, relu_max: Option<f32>, out: &mut [MaybeUninit<f32>], block: Block) {
    debug_assert!(applies(g));
    let image_len = g.channels * g.height * g.width;
    assert!(input.offset + image_len <= input.stride && x.len() >= (g.batch - 1) * input.stride + input.offset + image_len);
    assert_eq!(weight.len(), g.outputs * g.channels / g.groups * g.kernel[0] * g.kernel[1]);
    let pieces = split(g) * split(g);
    assert_eq!(out.len(), g.batch * block.stride);
    assert!(block.offset + g.out_image_len() <= block.stride);
    let tiles = Tiles::of(g);
    let images_per_chunk = (CHUNK_TILES / tiles.per_image).clamp(1, g.batch);
    let most = images_per_chunk * tiles.per_image;
    let [mut u, mut v, mut m] = BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    // One 3×3 kernel per output, input channel and piece.
    let pairs = g.outputs * g.channels / g.groups * pieces;
    for (buffer, len) in [(&mut u, POINTS * pairs), (&mut v, g.channels * pieces * POINTS * most), (&mut m, POINTS * g.outputs * most)] {
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
    }
    transform_weights(&split_kernels(g, weight), pairs, &mut u[..POINTS * pairs]);
    // MaybeUninit<f32> has f32's layout; values are only written through it.
    let out = Shared(out.as_mut_ptr().cast());
    for first in (0..g.batch).step_by(images_per_chunk) {
        let chunk = Chunk { first, images: images_per_chunk.min(g.batch - first), tiles };
        let n = chunk.tiles();
        let gather = Gather::of(g, &chunk);
        v[..g.channels * pieces * POINTS * n].par_chunks_mut(pieces * POINTS * n).enumerate().for_each_init(Vec::new, |scratch, (c, vc)| transform_input(g, x, input, &chunk, &gather, c, vc, scratch));
        multiply(g, &u, &v, n, &mut m[..POINTS * g.outputs * n]);
        let m = &m;
        (0..g.outputs).into_par_iter().for_each_init(
            || vec![0.0f32; TILE * TILE * n],
            // SAFETY: each output channel writes its own values of the blocks, all within `out`.
            |scratch, o| unsafe { transform_output(g, m, &chunk, o, bias.map_or(0.0, |b| b[o]), relu_max, scratch, &out, block) },
        );
    }
    BUFFERS.with(|b| *b.borrow_mut() = [u, v, m]);
}

thread_local! {
    /// The transformed weights, inputs and products of the last call, kept
    /// for the next: fresh buffers of this size are mapped pages, and their
    /// first-touch faults cost as much as the transforms (measured on
    /// CaffeNet's conv3). Every call writes what it reads.
    static BUFFERS: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// How a convolution's output is cut into 4×4 tiles (the last ones overhang).
#[derive(Clone, Copy)]
struct Tiles {
    rows: usize,
    cols: usize,
    per_image: usize,
}

impl Tiles {
    fn of(g: &Geometry) -> Tiles {
        let (rows, cols) = (g.out_height.div_ceil(TILE), g.out_width.div_ceil(TILE));
        Tiles { rows, cols, per_image: rows * cols }
    }
}

/// The images of one pass; tile t is (image, row, column) in that order.
struct Chunk {
    first: usize,
    images: usize,
    tiles: Tiles,
}

impl Chunk {
    fn tiles(&self) -> usize {
        self.images * self.tiles.per_image
    }
}

/// `dst = Σ coef · src[offset..][..dst.len()]` over the terms, zero coefficients skipped.
#[inline]
fn combine(dst: &mut [f32], src: &[f32], terms: impl IntoIterator<Item = (f32, usize)>) {
    let mut first = true;
    for (coef, offset) in terms {
        if coef == 0.0 {
            continue;
        }
        let row = &src[offset..offset + dst.len()];
        if first {
            dst.iter_mut().zip(row).for_each(|(d, &s)| *d = coef * s);
            first = false;
        } else {
            dst.iter_mut().zip(row).for_each(|(d, &s)| *d += coef * s);
        }
    }
    if first {
        dst.fill(0.0);
    }
}

/// `U = G w Gᵀ` for each of `pairs` 3×3 kernels into `u`: 36 rows of `pairs` values, point-major.
fn transform_weights(weight: &[f32], pairs: usize, u: &mut [f32]) {
    const BLOCK: usize = 64;
    let u_rows = Shared(u.as_mut_ptr());
    (0..pairs.div_ceil(BLOCK)).into_par_iter().for_each(|block| {
        let p0 = block * BLOCK;
        let len = BLOCK.min(pairs - p0);
        // The block's 9 taps as rows, so that the transform runs along the pairs.
        let mut taps = [0.0f32; 9 * BLOCK];
        for (p, kernel) in weight[p0 * 9..(p0 + len) * 9].chunks_exact(9).enumerate() {
            for (k, &w) in kernel.iter().enumerate() {
                taps[k * BLOCK + p] = w;
            }
        }
        // rows[i][b] = Σ_a G[i][a] · w[a][b], then U[i][j] = Σ_b G[j][b] · rows[i][b].
        let mut rows = [0.0f32; PATCH * 3 * BLOCK];
        for i in 0..PATCH {
            for b in 0..3 {
                combine(&mut rows[(i * 3 + b) * BLOCK..][..BLOCK], &taps, (0..3).map(|a| (G[i][a], (a * 3 + b) * BLOCK)));
            }
        }
        let mut point = [0.0f32; BLOCK];
        for i in 0..PATCH {
            for j in 0..PATCH {
                combine(&mut point, &rows, (0..3).map(|b| (G[j][b], (i * 3 + b) * BLOCK)));
                // SAFETY: block `block` alone writes pairs p0..p0 + len of each row, all within u.
                unsafe { u_rows.write_all((i * PATCH + j) * pairs + p0, &point[..len]) };
            }
        }
    });
}

/// Where each tile's 36 inputs lie in a chunk's padded planes, and how those are laid out.
struct Gather {
    /// Padded plane: the input at offset (pad, pad), zeros around, as many
    /// rows and columns as the tiles' patches reach.
    height: usize,
    width: usize,
    /// 3×3 pieces per side of the kernel, whose patches start 3 apart.
    split: usize,
    /// `index[k · stride + t]`: tile t's input k (row-major in its 6×6 patch)
    /// in the chunk's padded planes, image after image; 0 past the last tile,
    /// so that every vector of tiles reads a whole vector of indices.
    index: Vec<u32>,
    stride: usize,
    /// The largest index.
    largest: usize,
}

impl Gather {
    fn of(g: &Geometry, chunk: &Chunk) -> Gather {
        let tiles = chunk.tiles;
        let split = split(g);
        let reach = PATCH - TILE + 3 * (split - 1);
        let (height, width) = (tiles.rows * TILE + reach, tiles.cols * TILE + reach);
        let n = chunk.tiles();
        let stride = n.next_multiple_of(LANES);
        let mut index = vec![0u32; POINTS * stride];
        for image in 0..chunk.images {
            for ty in 0..tiles.rows {
                for tx in 0..tiles.cols {
                    let t = (image * tiles.rows + ty) * tiles.cols + tx;
                    for r in 0..PATCH {
                        for s in 0..PATCH {
                            index[(r * PATCH + s) * stride + t] = ((image * height + ty * TILE + r) * width + tx * TILE + s) as u32;
                        }
                    }
                }
            }
        }
        // The last piece's patch of the last tile ends at the plane's last value.
        let largest = chunk.images * height * width - 1;
        Gather { height, width, split, index, stride, largest }
    }
}

/// Channel `c`'s patches of the chunk's images into `vc`: per piece of the
/// kernel, 36 rows of the chunk's tiles.
#[allow(clippy::too_many_arguments)]
fn transform_input(g: &Geometry, x: &[f32], input: Block, chunk: &Chunk, gather: &Gather, c: usize, vc: &mut [f32], scratch: &mut Vec<f32>) {
    let n = chunk.tiles();
    let padded_len = chunk.images * gather.height * gather.width;
    scratch.resize(padded_len, 0.0);
    let padded = &mut scratch[..padded_len];
    // The planes with their zero border (written whole, so that no value of
    // another channel stays), then the patches through the index: no bounds
    // to test per value. Each vector of tiles is transformed in registers.
    padded.fill(0.0);
    let plane = g.height * g.width;
    for image in 0..chunk.images {
        let src = &x[(chunk.first + image) * input.stride + input.offset + c * plane..][..plane];
        for (y, line) in src.chunks_exact(g.width).enumerate() {
            let at = (image * gather.height + y + g.pad[0]) * gather.width + g.pad[1];
            padded[at..at + g.width].copy_from_slice(line);
        }
    }
    assert!(gather.index.len() >= POINTS * gather.stride && padded_len > gather.largest);
    for (piece, vc) in vc.chunks_exact_mut(POINTS * n).enumerate() {
        // The piece's patches start this far from the first piece's.
        let shift = (piece / gather.split * gather.width + piece % gather.split) * 3;
        for t0 in (0..n).step_by(LANES) {
            transform_tiles(padded, gather, shift, n, t0, vc);
        }
    }
}

/// Tiles t0.. of one piece (a vector of them, fewer at the end) into `vc`.
#[inline]
fn transform_tiles(padded: &[f32], gather: &Gather, shift: usize, n: usize, t0: usize, vc: &mut [f32]) {
    let len = LANES.min(n - t0);
    let mut d = [[0.0f32; LANES]; POINTS];
    for (k, lanes) in d.iter_mut().enumerate() {
        let index: &[u32; LANES] = gather.index[k * gather.stride + t0..][..LANES].try_into().unwrap();
        for (v, &i) in lanes.iter_mut().zip(index) {
            // SAFETY: every index plus the shift is at most `largest`, within
            // `padded` (checked by the caller): `index` is of the first
            // piece, and the others' patches end where the tiles reach.
            *v = unsafe { *padded.get_unchecked(i as usize + shift) };
        }
    }
    // V = Bᵀ d B: each column through Bᵀ, then each row.
    for s in 0..PATCH {
        let column = input_1d(std::array::from_fn(|r| d[r * PATCH + s]));
        (0..PATCH).for_each(|i| d[i * PATCH + s] = column[i]);
    }
    for i in 0..PATCH {
        let row = input_1d(std::array::from_fn(|s| d[i * PATCH + s]));
        for (j, lanes) in row.iter().enumerate() {
            vc[(i * PATCH + j) * n + t0..][..len].copy_from_slice(&lanes[..len]);
        }
    }
}

/// Tiles transformed together, one vector of each value.
const LANES: usize = 16;
type Lanes = [f32; LANES];

/// `Bᵀ d` for 6 values per lane (Lavin & Gray's F(4, 3), written out: half
/// of Bᵀ is zeros).
#[inline(always)]
fn input_1d(d: [Lanes; PATCH]) -> [Lanes; PATCH] {
    let mut t = [[0.0f32; LANES]; PATCH];
    let [d0, d1, d2, d3, d4, d5] = &d;
    for l in 0..LANES {
        let (d0, d1, d2, d3, d4, d5) = (d0[l], d1[l], d2[l], d3[l], d4[l], d5[l]);
        t[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        t[1][l] = -4.0 * (d1 + d2) + d3 + d4;
        t[2][l] = 4.0 * (d1 - d2) - d3 + d4;
        t[3][l] = 2.0 * (d3 - d1) - d2 + d4;
        t[4][l] = 2.0 * (d1 - d3) - d2 + d4;
        t[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    t
}

/// `Aᵀ m` for 6 values per lane.
#[inline(always)]
fn output_1d(m: [Lanes; PATCH]) -> [Lanes; TILE] {
    let mut y = [[0.0f32; LANES]; TILE];
    let [m0, m1, m2, m3, m4, m5] = &m;
    for l in 0..LANES {
        let (m0, m1, m2, m3, m4, m5) = (m0[l], m1[l], m2[l], m3[l], m4[l], m5[l]);
        let (sum12, diff12, sum34, diff34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        y[0][l] = m0 + sum12 + sum34;
        y[1][l] = diff12 + 2.0 * diff34;
        y[2][l] = sum12 + 4.0 * sum34;
        y[3][l] = diff12 + 8.0 * diff34 + m5;
    }
    y
}

/// `M[ξ] = U[ξ] · V[ξ]` per point and group: M is 36 × O × tiles, point-major.
fn multiply(g: &Geometry, u: &[f32], v: &[f32], n: usize, m: &mut [f32]) {
    // The sum runs over the group's input channels and the kernel's pieces.
    let (cg, og) = (g.channels / g.groups * split(g) * split(g), g.outputs / g.groups);
    m.par_chunks_mut(g.outputs * n).enumerate().for_each(|(xi, mx)| {
        for group in 0..g.groups {
            let a = Mat::rows(&u[xi * g.outputs * cg + group * og * cg..], cg);
            // V is (channel, piece)-major: that pair's row for point ξ at (pair · 36 + ξ) · n.
            let b = Mat::with_row_stride(&v[group * cg * POINTS * n + xi * n..], POINTS * n);
            matmul(&mut mx[group * og * n..(group + 1) * og * n], false, [og, n, cg], a, b, 1);
        }
    });
}

/// A buffer that threads write through, each to values of its own.
struct Shared(*mut f32);
// SAFETY: the writers write disjoint values (see transform_weights and transform_output).
unsafe impl Sync for Shared {}

impl Shared {
    /// # Safety
    /// `at` is within the buffer, and no other thread reads or writes it.
    unsafe fn write(&self, at: usize, value: f32) {
        unsafe { self.0.add(at).write(value) }
    }
    /// # Safety
    /// `at..at + values.len()` is within the buffer, and no other thread reads or writes it.
    unsafe fn write_all(&self, at: usize, values: &[f32]) {
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), self.0.add(at), values.len()) }
    }
}

/// Output channel `o` of the chunk's images, from M, into `out`'s blocks.
///
/// # Safety
/// `out` points to the whole output buffer (batch × block.stride values), and
/// no other thread writes channel `o`'s values.
#[allow(clippy::too_many_arguments)]
unsafe fn transform_output(g: &Geometry, m: &[f32], chunk: &Chunk, o: usize, bias: f32, relu_max: Option<f32>, scratch: &mut [f32], out: &Shared, block: Block) {
    let n = chunk.tiles();
    let y = scratch;
    for t0 in (0..n).step_by(LANES) {
        let len = LANES.min(n - t0);
        let mut m_t = [[0.0f32; LANES]; POINTS];
        for (xi, lanes) in m_t.iter_mut().enumerate() {
            lanes[..len].copy_from_slice(&m[(xi * g.outputs + o) * n + t0..][..len]);
        }
        // Y = Aᵀ M A: each column through Aᵀ, then each of the 4 rows.
        let mut cols = [[0.0f32; LANES]; TILE * PATCH];
        for j in 0..PATCH {
            let column = output_1d(std::array::from_fn(|i| m_t[i * PATCH + j]));
            (0..TILE).for_each(|a| cols[a * PATCH + j] = column[a]);
        }
        for a in 0..TILE {
            let row = output_1d(std::array::from_fn(|j| cols[a * PATCH + j]));
            for (b, lanes) in row.iter().enumerate() {
                y[(a * TILE + b) * n + t0..][..len].copy_from_slice(&lanes[..len]);
            }
        }
    }
    let activate = |v: f32| match relu_max {
        None => v + bias,
        Some(max) => (v + bias).max(0.0).min(max),
    };
    let tiles = chunk.tiles;
    for image in 0..chunk.images {
        let dst = (chunk.first + image) * block.stride + block.offset + o * g.out_plane();
        for ty in 0..tiles.rows {
            for tx in 0..tiles.cols {
                let t = (image * tiles.rows + ty) * tiles.cols + tx;
                for a in 0..TILE.min(g.out_height - ty * TILE) {
                    for b in 0..TILE.min(g.out_width - tx * TILE) {
                        let at = (ty * TILE + a) * g.out_width + tx * TILE + b;
                        // SAFETY: `at` is inside channel o's plane of this image, in the buffer (checked by the caller).
                        unsafe { out.write(dst + at, activate(y[(a * TILE + b) * n + t])) };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input transform Bᵀ (6 × 6), Lavin & Gray's F(4, 3).
    const BT: [[f32; PATCH]; PATCH] = [
        [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
        [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
        [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
        [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
        [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
        [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
    ];
    /// Output transform Aᵀ (4 × 6).
    const AT: [[f32; PATCH]; TILE] = [
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
        [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
        [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
        [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
    ];

    /// Unit vector e_k in every lane: the transform's column k comes out.
    fn unit(k: usize) -> [Lanes; PATCH] {
        std::array::from_fn(|r| [if r == k { 1.0 } else { 0.0 }; LANES])
    }

    #[test]
    fn written_out_transforms_are_the_matrices() {
        for k in 0..PATCH {
            let t = input_1d(unit(k));
            for i in 0..PATCH {
                assert!(t[i].iter().all(|&v| v == BT[i][k]), "Bᵀ[{i}][{k}]");
            }
            let y = output_1d(unit(k));
            for a in 0..TILE {
                assert!(y[a].iter().all(|&v| v == AT[a][k]), "Aᵀ[{a}][{k}]");
            }
        }
    }

    /// F(4, 3) in one dimension, by the matrices (G in f32, hence the
    /// tolerance): Aᵀ[(G g) ⊙ (Bᵀ d)] is the
    /// correlation of d with g (the 4 outputs a 3-tap filter gives on 6 inputs).
    #[test]
    fn the_matrices_correlate() {
        let d = [0.5f64, -1.0, 2.0, 3.0, -0.25, 1.5];
        let g = [1.0f64, -2.0, 0.5];
        let u: Vec<f64> = (0..PATCH).map(|i| (0..3).map(|a| G[i][a] as f64 * g[a]).sum()).collect();
        let v: Vec<f64> = (0..PATCH).map(|i| (0..PATCH).map(|r| BT[i][r] as f64 * d[r]).sum()).collect();
        for a in 0..TILE {
            let y: f64 = (0..PATCH).map(|i| AT[a][i] as f64 * u[i] * v[i]).sum();
            let want: f64 = (0..3).map(|k| d[a + k] * g[k]).sum();
            assert!((y - want).abs() < 1e-6, "output {a}: {y} vs {want}");
        }
    }
}
