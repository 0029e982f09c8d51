//! Max pooling on the CPU, forward (with the position of each maximum) and
//! backward (each output's gradient sent to its maximum), on NCHW `f32`
//! slices, in Caffe's rules: padding never wins, the output size rounds up
//! when asked, and a window that would start in the padding past the end is
//! dropped.
//!
//! Why by hand: burn's CPU max pooling took 270 ms for SqueezeNet's pool1 at
//! batch 32, a quarter of the forward pass (`deepsent bench --profile`); one
//! pass over each plane takes a tenth of that.

use rayon::prelude::*;

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

/// Forward: the maximum of each window into `out`, its index within the input
/// plane into `argmax` (the first maximum in row-major order; NaN is never
/// taken, as in Caffe).
pub fn forward(g: &Geometry, x: &[f32], out: &mut [f32], argmax: &mut [i32]) {
    assert_eq!(x.len(), g.planes * g.plane());
    assert_eq!(out.len(), g.planes * g.out_plane());
    assert_eq!(argmax.len(), out.len());
    // For each kernel column: the outputs whose tap falls inside the row.
    let columns: Vec<(usize, usize)> = (0..g.kernel[1]).map(|kj| valid_outputs(kj, g.stride[1], g.pad[1], g.width, g.out_width)).collect();
    let (s, ow) = (g.stride[1], g.out_width);
    out.par_chunks_mut(g.out_plane()).zip(argmax.par_chunks_mut(g.out_plane())).zip(x.par_chunks(g.plane())).for_each(|((y, arg), src)| {
        for oy in 0..g.out_height {
            let best = &mut y[oy * ow..(oy + 1) * ow];
            let at = &mut arg[oy * ow..(oy + 1) * ow];
            best.fill(f32::NEG_INFINITY);
            let (y0, y1) = Geometry::window(oy, g.kernel[0], g.stride[0], g.pad[0], g.height);
            at.fill((y0 * g.width) as i32);
            // Window rows, then kernel columns, then outputs: the inner loop
            // runs along the row with no branch (a select), so it vectorises.
            for iy in y0..y1 {
                let row = &src[iy * g.width..(iy + 1) * g.width];
                for (kj, &(lo, hi)) in columns.iter().enumerate() {
                    for ox in lo..hi {
                        let ix = ox * s + kj - g.pad[1];
                        let v = row[ix];
                        let take = v > best[ox];
                        best[ox] = if take { v } else { best[ox] };
                        at[ox] = if take { (iy * g.width + ix) as i32 } else { at[ox] };
                    }
                }
            }
        }
    });
}

/// The outputs `lo..hi` whose window column `k` lies inside `0..size`.
fn valid_outputs(k: usize, stride: usize, pad: usize, size: usize, out: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(k).div_ceil(stride);
    // o·stride + k − pad ≤ size − 1
    let hi = if size + pad < k + 1 { 0 } else { ((size - 1 + pad - k) / stride + 1).min(out) };
    (lo.min(hi), hi)
}

/// Backward: `dx` (zeroed here) receives each output's gradient at its maximum.
pub fn backward(g: &Geometry, dy: &[f32], argmax: &[i32], dx: &mut [f32]) {
    assert_eq!(dy.len(), g.planes * g.out_plane());
    assert_eq!(dx.len(), g.planes * g.plane());
    dx.par_chunks_mut(g.plane()).zip(dy.par_chunks(g.out_plane())).zip(argmax.par_chunks(g.out_plane())).for_each(|((d, grad), arg)| {
        d.fill(0.0);
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
        forward(&g, &x, &mut y, &mut arg);
        assert_eq!(y, [9.0, 6.0, 8.0, 8.0]);
        assert_eq!(arg, [5, 11, 14, 14]);
        let mut dx = [f32::NAN; 16];
        backward(&g, &[1.0, 2.0, 3.0, 4.0], &arg, &mut dx);
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
        forward(&g, &x, &mut y, &mut arg);
        assert_eq!(y, [-5.0, -5.0, -6.0, -5.0, -5.0, -6.0, -7.0, -7.0, -8.0]);
    }
}
