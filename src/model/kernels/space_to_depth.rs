//! A strided convolution as a stride-1 one on the input rearranged by
//! blocks (space-to-depth): with stride s, each s × s block of a channel's
//! pixels becomes s² channels of one pixel, and each k × k kernel becomes
//! s² kernels of ⌈k/s⌉ × ⌈k/s⌉ taps (those past k zero). CaffeNet's conv1
//! (11 × 11, stride 4, 3 channels) is then a 3 × 3 convolution of stride 1
//! over 48 channels, which [`winograd`] computes with 36 multiplications a
//! 4 × 4 output block per channel pair: 36 · 48 per output channel and
//! block against 16 · 363 for the direct product, 3.4× fewer even with the
//! zero taps of the 12 × 12 kernel.
//!
//! Why by hand: the rearrangement is a copy that no crate fuses with a
//! convolution, and it is only worth it in front of [`winograd`], which is
//! deepsent's own. Only the forward pass goes this way: the first layer,
//! where it applies, needs no input gradient, and its weight gradient has no
//! cheaper form here (the column matrix of the rearranged input is larger).

use super::conv::{Block, Geometry};
use super::winograd;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The stride-1 convolution that computes `g` on the rearranged input, when
/// [`winograd`] takes it: equal strides above 1, a square kernel, no
/// dilation, one group. Its input holds the padding (before and after) and
/// exactly the rows and columns the output reads, so it has no padding of
/// its own.
pub fn geometry(g: &Geometry) -> Option<Geometry> {
    let s = g.stride[0];
    if s < 2 || g.stride[1] != s || g.kernel[0] != g.kernel[1] || g.dilation != [1, 1] || g.groups != 1 {
        return None;
    }
    let k = g.kernel[0].div_ceil(s);
    let rearranged = Geometry {
        batch: g.batch,
        channels: g.channels * s * s,
        height: g.out_height + k - 1,
        width: g.out_width + k - 1,
        outputs: g.outputs,
        kernel: [k, k],
        stride: [1, 1],
        pad: [0, 0],
        dilation: [1, 1],
        groups: 1,
        out_height: g.out_height,
        out_width: g.out_width,
    };
    winograd::applies(&rearranged).then_some(rearranged)
}

/// Forward pass of `g` through its [`geometry`] `r`: `out`'s `block` of each
/// image written whole, then bias and a ReLU clipped at `relu_max` if given.
#[allow(clippy::too_many_arguments)]
pub fn forward_into(g: &Geometry, r: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>, relu_max: Option<f32>, out: &mut [MaybeUninit<f32>], block: Block) {
    let image_len = r.channels * r.height * r.width;
    let mut input = REARRANGED.with(|b| std::mem::take(&mut *b.borrow_mut()));
    // Every value is written by `rearrange`; the fill only runs when the buffer grows.
    input.resize(g.batch * image_len, 0.0);
    rearrange(g, r, x, &mut input[..g.batch * image_len]);
    let weight = rearrange_weights(g, r, weight);
    winograd::forward_into(r, &input, Block { stride: image_len, offset: 0 }, &weight, bias, relu_max, out, block);
    REARRANGED.with(|b| *b.borrow_mut() = input);
}

thread_local! {
    /// The rearranged input of the last call, kept for the next: a fresh
    /// buffer of CaffeNet's size (20 MB at batch 32) is mapped pages whose
    /// first touch costs a fifth of the convolution.
    static REARRANGED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `x` (N × C × H × W) as `r`'s input: channel (c · s + a) · s + b, pixel
/// (y, x) holds input channel c at (y · s + a − pad, x · s + b − pad), zero
/// outside the image.
fn rearrange(g: &Geometry, r: &Geometry, x: &[f32], out: &mut [f32]) {
    let s = g.stride[0];
    let plane = g.height * g.width;
    let r_plane = r.height * r.width;
    out.par_chunks_mut(r.channels * r_plane).zip(x.par_chunks(g.channels * plane)).for_each(|(dst, src)| {
        for (channel, dst) in dst.chunks_exact_mut(r_plane).enumerate() {
            let (c, a, b) = (channel / (s * s), channel / s % s, channel % s);
            let src = &src[c * plane..][..plane];
            for (y, row) in dst.chunks_exact_mut(r.width).enumerate() {
                let Some(iy) = Geometry::input_at(y, a, s, g.pad[0], 1, g.height) else {
                    row.fill(0.0);
                    continue;
                };
                let line = &src[iy * g.width..][..g.width];
                for (xx, v) in row.iter_mut().enumerate() {
                    *v = Geometry::input_at(xx, b, s, g.pad[1], 1, g.width).map_or(0.0, |ix| line[ix]);
                }
            }
        }
    });
}

/// `g`'s weights (O × C × k × k) as `r`'s (O × C·s² × k' × k'): tap (i, j)
/// of piece (a, b) is the original's (i · s + a, j · s + b), zero past k.
fn rearrange_weights(g: &Geometry, r: &Geometry, weight: &[f32]) -> Vec<f32> {
    let (s, k, kr) = (g.stride[0], g.kernel[0], r.kernel[0]);
    let mut out = vec![0.0f32; r.outputs * r.channels * kr * kr];
    for (o, kernels) in out.chunks_exact_mut(r.channels * kr * kr).enumerate() {
        for (channel, taps) in kernels.chunks_exact_mut(kr * kr).enumerate() {
            let (c, a, b) = (channel / (s * s), channel / s % s, channel % s);
            for i in 0..kr {
                for j in 0..kr {
                    let (ki, kj) = (i * s + a, j * s + b);
                    if ki < k && kj < k {
                        taps[i * kr + j] = weight[((o * g.channels + c) * k + ki) * k + kj];
                    }
                }
            }
        }
    }
    out
}
