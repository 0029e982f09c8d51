//! Max pooling on the CPU, forward (with the position of each maximum) and
//! backward (each output's gradient sent to its maximum), on NCHW `f32`
//! slices, in Caffe's rules: padding never wins, the output size rounds up
//! when asked, and a window that would start in the padding past the end is
//! dropped.
//!
//! Why by hand: burn's CPU max pooling took 270 ms for SqueezeNet's pool1 at
//! batch 32, a quarter of the forward pass (`deepsent bench --profile`); one
//! pass over each plane takes a tenth of that.

use super::uninit::assume_written;
use rayon::prelude::*;
use std::mem::MaybeUninit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Batch × channels: the number of planes.
    pub planes: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub out_height: usize,
    pub out_width: usize,
}

impl Geometry {
    /// The output size along one axis (Caffe's and PyTorch's rule).
    pub fn output_size(size: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> usize {
        let span = size + 2 * pad - kernel;
        let mut out = if ceil { span.div_ceil(stride) + 1 } else { span / stride + 1 };
        if ceil && pad > 0 && (out - 1) * stride >= size + pad {
            out -= 1;
        }
        out
    }

    fn plane(&self) -> usize {
        self.height * self.width
    }

    fn out_plane(&self) -> usize {
        self.out_height * self.out_width
    }

    /// The input rows (or columns) window `o` covers, clipped to the image.
    #[inline]
    fn window(o: usize, kernel: usize, stride: usize, pad: usize, size: usize) -> (usize, usize) {
        let start = (o * stride) as isize - pad as isize;
        let end = (start + kernel as isize).min(size as isize);
        (start.max(0) as usize, end.max(0) as usize)
    }
}

/// Forward: the maximum of each window into `out` and, when asked, its index
/// within the input plane into `argmax` (the first maximum in row-major
/// order; NaN is never taken, as in Caffe). Inference asks for no indices.
pub fn forward(g: &Geometry, x: &[f32], out: &mut [f32], argmax: Option<&mut [i32]>) {
    assert_eq!(x.len(), g.planes * g.plane());
    assert_eq!(out.len(), g.planes * g.out_plane());
    match argmax {
        Some(argmax) => {
            assert_eq!(argmax.len(), out.len());
            out.par_chunks_mut(g.out_plane())
                .zip(argmax.par_chunks_mut(g.out_plane()))
                .zip(x.par_chunks(g.plane()))
                .for_each_init(|| Rows::new(g), |rows, ((y, arg), src)| plane_forward::<true>(g, rows, src, y, arg));
        }
        None => out
            .par_chunks_mut(g.out_plane())
            .zip(x.par_chunks(g.plane()))
            .for_each_init(|| Rows::new(g), |rows, (y, src)| plane_forward::<false>(g, rows, src, y, &mut [])),
    }
}

/// One input row, padded with −∞ on both sides (padding never wins) and
/// split by column phase modulo the stride, so that every kernel column reads
/// a contiguous run: column `kj` of output `ox` is `phase[kj % s][ox + kj / s]`;
/// and the rows' maxima over each output column's window.
struct Rows {
    padded: Vec<f32>,
    phases: Vec<Vec<f32>>,
    /// `kernel[0]` slots: slot `iy % kernel[0]` holds input row `iy`'s window
    /// maxima (and their input positions) when `held` says so. Windows of
    /// consecutive output rows share rows (3 rows, stride 2: one), whose
    /// maxima are then not taken again.
    maxima: Vec<Vec<f32>>,
    positions: Vec<Vec<i32>>,
    held: Vec<Option<usize>>,
}

impl Rows {
    fn new(g: &Geometry) -> Rows {
        let s = g.stride[1];
        // Wide enough for the last window, also when it hangs over the end (ceil).
        let len = ((g.out_width - 1) * s + g.kernel[1]).max(g.width + g.pad[1]);
        let slots = g.kernel[0];
        Rows {
            padded: vec![f32::NEG_INFINITY; len],
            phases: (0..s).map(|p| vec![f32::NEG_INFINITY; (len - p).div_ceil(s)]).collect(),
            maxima: vec![vec![f32::NEG_INFINITY; g.out_width]; slots],
            positions: vec![vec![0; g.out_width]; slots],
            held: vec![None; slots],
        }
    }

    /// The slot of input row `iy`'s window maxima, taken now unless held.
    fn row_maxima<const INDEX: bool>(&mut self, g: &Geometry, src: &[f32], iy: usize) -> usize {
        let slot = iy % g.kernel[0];
        if self.held[slot] == Some(iy) {
            return slot;
        }
        self.held[slot] = Some(iy);
        let row = &src[iy * g.width..(iy + 1) * g.width];
        let (s, ow) = (g.stride[1], g.out_width);
        // Unpadded rows are split straight from the input (every pooling of
        // CaffeNet and SqueezeNet): the copy was a quarter of the work.
        let line = if g.pad[1] == 0 {
            row
        } else {
            self.padded[g.pad[1]..g.pad[1] + g.width].copy_from_slice(row);
            &self.padded[..]
        };
        if let ([even, odd], 2) = (&mut self.phases[..], s) {
            // Stride 2 as pairs, which vectorise (a strided gather does not).
            for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(line.chunks_exact(2)) {
                *e = pair[0];
                *o = pair[1];
            }
            if line.len() % 2 == 1 {
                even[line.len() / 2] = line[line.len() - 1];
            }
        } else {
            for (p, phase) in self.phases.iter_mut().enumerate() {
                for (d, v) in phase.iter_mut().zip(line[p..].iter().step_by(s)) {
                    *d = *v;
                }
            }
        }
        let (best, at) = (&mut self.maxima[slot], &mut self.positions[slot]);
        best.fill(f32::NEG_INFINITY);
        for kj in 0..g.kernel[1] {
            let run = &self.phases[kj % s][kj / s..kj / s + ow];
            if INDEX {
                // The input index of output 0's tap; −∞ padding is never taken.
                let base = (iy * g.width + kj) as i32 - g.pad[1] as i32;
                for (ox, ((b, a), &v)) in best.iter_mut().zip(at.iter_mut()).zip(run).enumerate() {
                    let take = v > *b;
                    *b = if take { v } else { *b };
                    *a = if take { base + (ox * s) as i32 } else { *a };
                }
            } else {
                for (b, &v) in best.iter_mut().zip(run) {
                    *b = if v > *b { v } else { *b };
                }
            }
        }
        slot
    }
}

/// One plane, separably: each input row's maxima over the windows' columns,
/// then, per output row, the maximum of its window's rows' maxima, the inner
/// loops branch-free selects over contiguous values, so that they
/// vectorise. Strict comparisons in row order keep the first maximum of a
/// window in row-major order, as the window read tap by tap did (the
/// definition in the tests), so values and positions are the same; a
/// window of 3 × 3 taps at stride 2 costs 3 + 3/2 passes instead of 9.
fn plane_forward<const INDEX: bool>(g: &Geometry, rows: &mut Rows, src: &[f32], y: &mut [f32], arg: &mut [i32]) {
    let ow = g.out_width;
    rows.held.fill(None);
    for oy in 0..g.out_height {
        let best = &mut y[oy * ow..(oy + 1) * ow];
        best.fill(f32::NEG_INFINITY);
        let (y0, y1) = Geometry::window(oy, g.kernel[0], g.stride[0], g.pad[0], g.height);
        let mut at: &mut [i32] = &mut [];
        if INDEX {
            at = &mut arg[oy * ow..(oy + 1) * ow];
            at.fill((y0 * g.width) as i32);
        }
        for iy in y0..y1 {
            let slot = rows.row_maxima::<INDEX>(g, src, iy);
            let maxima = &rows.maxima[slot];
            if INDEX {
                for ((b, a), (&v, &p)) in best.iter_mut().zip(at.iter_mut()).zip(maxima.iter().zip(&rows.positions[slot])) {
                    let take = v > *b;
                    *b = if take { v } else { *b };
                    *a = if take { p } else { *a };
                }
            } else {
                for (b, &v) in best.iter_mut().zip(maxima) {
                    *b = if v > *b { v } else { *b };
                }
            }
        }
    }
}

/// Backward: `dx` (zeroed here: it may be uninitialised memory, which saves
/// a second pass over the input-sized blob) receives each output's gradient
/// at its maximum.
pub fn backward(g: &Geometry, dy: &[f32], argmax: &[i32], dx: &mut [MaybeUninit<f32>]) {
    assert_eq!(dy.len(), g.planes * g.out_plane());
    assert_eq!(dx.len(), g.planes * g.plane());
    dx.par_chunks_mut(g.plane()).zip(dy.par_chunks(g.out_plane())).zip(argmax.par_chunks(g.out_plane())).for_each(|((d, grad), arg)| {
        d.fill(MaybeUninit::new(0.0));
        // SAFETY: every value was just written.
        let d = unsafe { assume_written(d) };
        for (&v, &i) in grad.iter().zip(arg) {
            d[i as usize] += v;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caffe_output_sizes() {
        // CaffeNet pool1: 55 → 27 (3/2); SqueezeNet pool1: 111 → 55 with ceil.
        assert_eq!(Geometry::output_size(55, 3, 2, 0, true), 27);
        assert_eq!(Geometry::output_size(111, 3, 2, 0, true), 55);
        // SqueezeNet pool8: 27 → 13; ceil matters at 14 → 7 (floor: 6).
        assert_eq!(Geometry::output_size(14, 3, 2, 0, true), 7);
        assert_eq!(Geometry::output_size(14, 3, 2, 0, false), 6);
        // A window starting in the right padding is dropped: 5 + 2·1 − 2 = 5, ceil(5/2)+1 = 4 → 3.
        assert_eq!(Geometry::output_size(5, 2, 2, 1, true), 3);
    }

    #[test]
    fn forward_and_backward_by_hand() {
        // One 4 × 4 plane, 3 × 3 windows, stride 2, ceil: 2 × 2 outputs, the
        // last row and column of windows hanging over the edge.
        let x = [
            1.0, 2.0, 0.0, 5.0, //
            3.0, 9.0, 1.0, 0.0, //
            0.0, 0.0, 4.0, 6.0, //
            7.0, 1.0, 8.0, 2.0,
        ];
        let g = Geometry { planes: 1, height: 4, width: 4, kernel: [3, 3], stride: [2, 2], pad: [0, 0], out_height: 2, out_width: 2 };
        let mut y = [0.0; 4];
        let mut arg = [0; 4];
        forward(&g, &x, &mut y, Some(&mut arg));
        assert_eq!(y, [9.0, 6.0, 8.0, 8.0]);
        assert_eq!(arg, [5, 11, 14, 14]);
        let mut dx = [f32::NAN; 16];
        // SAFETY: backward stores only values.
        backward(&g, &[1.0, 2.0, 3.0, 4.0], &arg, unsafe { super::super::uninit::as_writable(&mut dx) });
        let mut want = [0.0; 16];
        want[5] = 1.0;
        want[11] = 2.0;
        want[14] = 7.0; // both lower windows chose the 8
        assert_eq!(dx, want);
    }

    #[test]
    fn padding_never_wins() {
        let x = [-5.0, -6.0, -7.0, -8.0];
        let g = Geometry { planes: 1, height: 2, width: 2, kernel: [2, 2], stride: [1, 1], pad: [1, 1], out_height: 3, out_width: 3 };
        let mut y = [0.0; 9];
        let mut arg = [0; 9];
        forward(&g, &x, &mut y, Some(&mut arg));
        assert_eq!(y, [-5.0, -5.0, -6.0, -5.0, -5.0, -6.0, -7.0, -7.0, -8.0]);
    }

    /// The definition, window by window: the first maximum in row-major
    /// order, padding and the ceil overhang skipped.
    fn reference(g: &Geometry, x: &[f32]) -> (Vec<f32>, Vec<i32>) {
        let (mut y, mut arg) = (Vec::new(), Vec::new());
        for plane in x.chunks(g.plane()) {
            for oy in 0..g.out_height {
                for ox in 0..g.out_width {
                    let (y0, y1) = Geometry::window(oy, g.kernel[0], g.stride[0], g.pad[0], g.height);
                    let (x0, x1) = Geometry::window(ox, g.kernel[1], g.stride[1], g.pad[1], g.width);
                    let (mut best, mut at) = (f32::NEG_INFINITY, (y0 * g.width) as i32);
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            if plane[iy * g.width + ix] > best {
                                best = plane[iy * g.width + ix];
                                at = (iy * g.width + ix) as i32;
                            }
                        }
                    }
                    y.push(best);
                    arg.push(at);
                }
            }
        }
        (y, arg)
    }

    #[test]
    fn forward_matches_the_definition() {
        // SqueezeNet's 3/2 with ceil, CaffeNet's 3/2, padded 3/1, 2/2 padded
        // with ceil, a 3-stride, a non-square window; ties from rounding.
        for (h, w, kernel, stride, pad, ceil) in [
            (11, 11, [3, 3], [2, 2], [0, 0], true),
            (9, 9, [3, 3], [2, 2], [0, 0], false),
            (7, 8, [3, 3], [1, 1], [1, 1], false),
            (5, 6, [2, 2], [2, 2], [1, 1], true),
            (10, 13, [3, 3], [3, 3], [0, 1], true),
            (6, 9, [2, 4], [1, 2], [1, 2], true),
        ] {
            let planes = 3;
            let (oh, ow) = (Geometry::output_size(h, kernel[0], stride[0], pad[0], ceil), Geometry::output_size(w, kernel[1], stride[1], pad[1], ceil));
            let g = Geometry { planes, height: h, width: w, kernel, stride, pad, out_height: oh, out_width: ow };
            let x: Vec<f32> = (0..planes * h * w).map(|i| ((i * 7919 % 23) as f32 / 4.0).round()).collect();
            let (want_y, want_arg) = reference(&g, &x);
            let (mut y, mut arg) = (vec![0.0; want_y.len()], vec![0; want_y.len()]);
            forward(&g, &x, &mut y, Some(&mut arg));
            assert_eq!((&y, &arg), (&want_y, &want_arg), "{g:?}");
            let mut y_only = vec![0.0; want_y.len()];
            forward(&g, &x, &mut y_only, None);
            assert_eq!(y_only, want_y, "{g:?} without indices");
        }
    }
}
