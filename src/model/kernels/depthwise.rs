//! Depthwise convolution (one input channel per group, one output per
//! channel: EfficientNet's 3×3 and 5×5 layers), forward and both gradients,
//! by direct loops over one channel plane at a time.
//!
//! Why not through `gemm` like the other convolutions: each output channel
//! reads one input channel, so the matrix product would be 1 × taps × plane,
//! all overhead. Why these loops: the work is a few multiply-adds per value,
//! so speed is memory traffic and vector width. Each output row is summed
//! over every tap while it sits in L1 (a tap-by-tap pass over the whole plane
//! went to L2 nine or 25 times), and a strided layer reads its input through
//! [`Phases`], a copy of the plane with each row split by column modulo the
//! stride, so that every tap reads and writes contiguous runs that vectorise
//! (a stride-2 gather was scalar). The forward pass and the input gradient
//! add the taps to each value in the same order as before, so their numbers
//! are unchanged; the weight gradient's row sums use 16 lanes.

use super::conv::Geometry;
use super::uninit::assume_written;
use std::mem::MaybeUninit;
use rayon::prelude::*;

/// For kernel column `kj`: the output columns `lo..hi` whose input column is
/// inside the image, and where the input column of output `lo` and the ones
/// after it (one stride apart) start in a row of [`Phases`].
#[derive(Clone, Copy)]
struct Columns {
    lo: usize,
    hi: usize,
    start: usize,
}

/// The columns of every kernel column that reaches inside the image (worked
/// out once per layer: per row, the division by the stride was most of the
/// time on 7 × 7 planes).
fn columns(g: &Geometry) -> Vec<(usize, Columns)> {
    let (s, phase_len) = (g.stride[1], g.width.div_ceil(g.stride[1]));
    (0..g.kernel[1])
        .filter_map(|kj| {
            let (lo, hi) = Geometry::valid_outputs(kj, s, g.pad[1], g.dilation[1], g.width, g.out_width);
            let input = lo * s + kj * g.dilation[1];
            (lo < hi).then(|| (kj, Columns { lo, hi, start: ((input - g.pad[1]) % s) * phase_len + (input - g.pad[1]) / s }))
        })
        .collect()
}

/// One input plane with each row split into `stride` phases (phase p holds
/// columns p, p + s, p + 2s, …), so that the columns a tap reads across a run
/// of outputs, `input, input + s, …`, lie side by side. At stride 1 it is
/// the plane itself, not a copy.
struct Phases<'a> {
    data: &'a [f32],
    /// Values per image row: s · ⌈W / s⌉.
    pitch: usize,
}

impl<'a> Phases<'a> {
    fn of(g: &Geometry, plane: &'a [f32], buffer: &'a mut Vec<f32>) -> Phases<'a> {
        let (w, s) = (g.width, g.stride[1]);
        if s == 1 {
            return Phases { data: plane, pitch: w };
        }
        let phase_len = w.div_ceil(s);
        let pitch = s * phase_len;
        // Every place a run reads is written below (the rest is never read),
        // so the buffer is sized once per thread, not cleared per plane.
        buffer.resize(g.height * pitch, 0.0);
        for (row, out) in plane.chunks_exact(w).zip(buffer.chunks_exact_mut(pitch)) {
            for (p, out) in out.chunks_exact_mut(phase_len).enumerate() {
                for (o, v) in out.iter_mut().zip(row.iter().skip(p).step_by(s)) {
                    *o = *v;
                }
            }
        }
        Phases { data: buffer, pitch }
    }

    /// Input row `iy`, the columns that `c` reads.
    #[inline]
    fn run(&self, iy: usize, c: &Columns) -> &[f32] {
        &self.data[iy * self.pitch + c.start..][..c.hi - c.lo]
    }
}

/// `out` (N × C × OH × OW) from `x` and `weight` (C × 1 × KH × KW), without
/// bias or activation; `out` may be memory not yet written: every value is.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32], out: &mut [MaybeUninit<f32>]) {
    let (plane, in_plane, taps) = (g.out_plane(), g.height * g.width, g.kernel[0] * g.kernel[1]);
    let columns = columns(g);
    out.par_chunks_mut(plane).enumerate().for_each_init(Vec::new, |buffer, (i, y)| {
        let w = &weight[(i % g.channels) * taps..][..taps];
        let input = Phases::of(g, &x[i * in_plane..(i + 1) * in_plane], buffer);
        for (oy, dst) in y.chunks_exact_mut(g.out_width).enumerate() {
            dst.fill(MaybeUninit::new(0.0));
            // SAFETY: just written.
            let dst = unsafe { assume_written(dst) };
            for ki in 0..g.kernel[0] {
                let Some(iy) = Geometry::input_at(oy, ki, g.stride[0], g.pad[0], g.dilation[0], g.height) else { continue };
                for (kj, c) in &columns {
                    let wv = w[ki * g.kernel[1] + kj];
                    for (d, s) in dst[c.lo..c.hi].iter_mut().zip(input.run(iy, c)) {
                        *d += wv * s;
                    }
                }
            }
        }
    });
}

/// The input gradient `dx` (N × C × H × W) from the output gradient `dy`.
/// Each input row gathers what it received from every tap, into phase rows
/// (contiguous at any stride), interleaved into `dx` at the end.
pub fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (plane, in_plane, taps) = (g.out_plane(), g.height * g.width, g.kernel[0] * g.kernel[1]);
    let columns = columns(g);
    let (s, phase_len) = (g.stride[1], g.width.div_ceil(g.stride[1]));
    // For input row iy and kernel row ki, the output row that reads it, if
    // any (worked out once: two divisions per row and tap were most of the
    // time on 7 × 7 planes).
    let source_rows: Vec<Option<usize>> = (0..g.height)
        .flat_map(|iy| {
            (0..g.kernel[0]).map(move |ki| {
                (iy + g.pad[0]).checked_sub(ki * g.dilation[0]).filter(|t| t % g.stride[0] == 0).map(|t| t / g.stride[0]).filter(|&oy| oy < g.out_height)
            })
        })
        .collect();
    dx.par_chunks_mut(in_plane).enumerate().for_each_init(
        || vec![0.0f32; s * phase_len],
        |acc, (i, d)| {
            let w = &weight[(i % g.channels) * taps..][..taps];
            let grad = &dy[i * plane..(i + 1) * plane];
            for (iy, row) in d.chunks_exact_mut(g.width).enumerate() {
                acc.fill(0.0);
                for (ki, oy) in source_rows[iy * g.kernel[0]..][..g.kernel[0]].iter().enumerate() {
                    let Some(oy) = *oy else { continue };
                    let grad_row = &grad[oy * g.out_width..(oy + 1) * g.out_width];
                    for (kj, c) in &columns {
                        let wv = w[ki * g.kernel[1] + kj];
                        for (a, v) in acc[c.start..c.start + (c.hi - c.lo)].iter_mut().zip(&grad_row[c.lo..c.hi]) {
                            *a += wv * v;
                        }
                    }
                }
                for (p, phase) in acc.chunks_exact(phase_len).enumerate() {
                    for (r, a) in row.iter_mut().skip(p).step_by(s).zip(phase) {
                        *r = *a;
                    }
                }
            }
        },
    );
}

/// The weight gradient `dw` (C × 1 × KH × KW), summed over the batch.
pub fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (plane, in_plane, taps) = (g.out_plane(), g.height * g.width, g.kernel[0] * g.kernel[1]);
    let columns = columns(g);
    dw.par_chunks_mut(taps).enumerate().for_each_init(Vec::new, |buffer, (c, dw)| {
        let mut sums = vec![0.0f64; taps];
        for n in 0..g.batch {
            let i = n * g.channels + c;
            let input = Phases::of(g, &x[i * in_plane..(i + 1) * in_plane], buffer);
            let grad = &dy[i * plane..(i + 1) * plane];
            for (oy, grad_row) in grad.chunks_exact(g.out_width).enumerate() {
                for ki in 0..g.kernel[0] {
                    let Some(iy) = Geometry::input_at(oy, ki, g.stride[0], g.pad[0], g.dilation[0], g.height) else { continue };
                    for (kj, c) in &columns {
                        let dot = dot(&grad_row[c.lo..c.hi], input.run(iy, c));
                        sums[ki * g.kernel[1] + kj] += dot as f64;
                    }
                }
            }
        }
        dw.iter_mut().zip(&sums).for_each(|(d, &s)| *d = s as f32);
    });
}

/// Σ aᵢ·bᵢ in 16 lanes (one AVX-512 register), so that it vectorises.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for l in 0..LANES {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
