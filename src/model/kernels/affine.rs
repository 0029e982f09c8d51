//! A per-channel affine map and an optional clipped ReLU, `y = act(a_c · x + b_c)`,
//! on NCHW `f32` slices: what an inference-mode BatchNorm, a Scale and a
//! ReLU(6) that follow each other in place compute together (EfficientNet-Lite0
//! has 49 such chains). One pass over the blob forward and one backward,
//! where burn's broadcasting element-wise operations took five and allocated
//! a blob for each: half of EfficientNet-Lite0's training step (`deepsent
//! bench --profile`).

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Forward: `y = act(a[c] · x + b[c])` over `planes` planes of `plane`
/// values, channel = plane mod C; every value of `y` is written (it may be
/// uninitialised memory).
pub fn forward(x: &[f32], a: &[f32], b: &[f32], relu_max: Option<f32>, plane: usize, y: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), y.len());
    let channels = a.len();
    y.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(i, (y, x))| {
        let (a, b) = (a[i % channels], b[i % channels]);
        match relu_max {
            None => y.iter_mut().zip(x).for_each(|(y, x)| *y = MaybeUninit::new(a * x + b)),
            Some(max) => y.iter_mut().zip(x).for_each(|(y, x)| *y = MaybeUninit::new((a * x + b).max(0.0).min(max))),
        }
    });
}

/// Backward, in place, from `grad`, the gradient of the output: through the
/// activation first when `relu` gives its output and clip (the gradient
/// passes where 0 < output < max, as [`super::conv::relu_backward`]), giving
/// `du`; then per channel `da = Σ du · x` and `db = Σ du` over batch and
/// positions, and, when `want_x`, `grad` becomes `dx = a[c] · du`.
///
/// One pass over the blob, plane by plane: the ReLU's mask, `dx` and the
/// sums were three (and a zeroed `dx`), the largest share of EfficientNet-Lite0's
/// BatchNorm backward, which is memory-bound. `dx` is what the separate
/// passes gave, bit for bit; the sums are in f64 along the plane and over
/// the images.
#[allow(clippy::too_many_arguments)]
pub fn backward(x: &[f32], a: &[f32], relu: Option<(&[f32], f32)>, plane: usize, grad: &mut [f32], want_x: bool, da: &mut [f32], db: &mut [f32]) {
    assert_eq!(x.len(), grad.len());
    let channels = a.len();
    // Without an activation the output is not read: x stands in for it.
    let (y, max) = match relu {
        Some((y, max)) => (y, Some(max)),
        None => (x, None),
    };
    assert_eq!(y.len(), grad.len());
    let sums: Vec<(f64, f64)> = grad
        .par_chunks_mut(plane)
        .zip(x.par_chunks(plane))
        .zip(y.par_chunks(plane))
        .enumerate()
        .map(|(i, ((g, x), y))| match max {
            Some(max) => plane_sums::<true>(g, x, y, max, a[i % channels], want_x),
            None => plane_sums::<false>(g, x, y, f32::INFINITY, a[i % channels], want_x),
        })
        .collect();
    for c in 0..channels {
        let (mut sa, mut sb) = (0.0f64, 0.0f64);
        for &(pa, pb) in sums.iter().skip(c).step_by(channels) {
            sa += pa;
            sb += pb;
        }
        da[c] = sa as f32;
        db[c] = sb as f32;
    }
}

/// One plane of [`backward`]: its `(Σ du · x, Σ du)`, each product in f32
/// as before, summed in 8 f64 lanes: one running f32 sum per plane was a
/// chain of dependent additions, 4 cycles a value (EfficientNet-Lite0's
/// training step is 3 % faster without it). The f64 lanes are also the more
/// accurate sum; the last bits of the parameters' gradients moved with them.
fn plane_sums<const RELU: bool>(grad: &mut [f32], x: &[f32], y: &[f32], max: f32, a: f32, want_x: bool) -> (f64, f64) {
    const LANES: usize = 8;
    let du_of = |g: f32, y: f32| if !RELU || ((y > 0.0) & (y < max)) { g } else { 0.0 };
    let (mut sa, mut sb) = ([0.0f64; LANES], [0.0f64; LANES]);
    let whole = grad.len() / LANES * LANES;
    let (g_main, g_rest) = grad.split_at_mut(whole);
    let lanes = g_main.chunks_exact_mut(LANES).zip(x[..whole].chunks_exact(LANES)).zip(y[..whole].chunks_exact(LANES));
    for ((g, x), y) in lanes {
        for l in 0..LANES {
            let du = du_of(g[l], y[l]);
            sa[l] += (x[l] * du) as f64;
            sb[l] += du as f64;
            if want_x {
                g[l] = a * du;
            }
        }
    }
    for ((g, &x), &y) in g_rest.iter_mut().zip(&x[whole..]).zip(&y[whole..]) {
        let du = du_of(*g, y);
        sa[0] += (x * du) as f64;
        sb[0] += du as f64;
        if want_x {
            *g = a * du;
        }
    }
    (sa.iter().sum(), sb.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::super::uninit::as_writable;
    use super::*;

    fn forward_into(x: &[f32], a: &[f32], b: &[f32], relu_max: Option<f32>, plane: usize) -> Vec<f32> {
        let mut y = vec![f32::NAN; x.len()];
        // SAFETY: forward stores only values.
        forward(x, a, b, relu_max, plane, unsafe { as_writable(&mut y) });
        y
    }

    #[test]
    fn by_hand() {
        // 2 images × 2 channels × 2 positions.
        let x = [1.0, -2.0, 3.0, 4.0, 0.5, 0.0, -1.0, 10.0];
        let (a, b) = ([2.0, -1.0], [0.5, 1.0]);
        assert_eq!(forward_into(&x, &a, &b, None, 2), [2.5, -3.5, -2.0, -3.0, 1.5, 0.5, 2.0, -9.0]);
        let y = forward_into(&x, &a, &b, Some(2.0), 2);
        assert_eq!(y, [2.0, 0.0, 0.0, 0.0, 1.5, 0.5, 2.0, 0.0]);
        let du = [1.0, 1.0, 2.0, 0.0, -1.0, 3.0, 1.0, 1.0];
        let (mut dx, mut da, mut db) = (du, [0.0; 2], [0.0; 2]);
        backward(&x, &a, None, 2, &mut dx, true, &mut da, &mut db);
        assert_eq!(dx, [2.0, 2.0, -2.0, -0.0, -2.0, 6.0, -1.0, -1.0]);
        // channel 0: x·du = 1 − 2 − 0.5 + 0 = −1.5, Σdu = 1 + 1 − 1 + 3 = 4
        // channel 1: 6 + 0 − 1 + 10 = 15, Σdu = 2 + 0 + 1 + 1 = 4
        assert_eq!(da, [-1.5, 15.0]);
        assert_eq!(db, [4.0, 4.0]);
        // Through the ReLU6 (clip 2): only outputs 1.5 and 0.5 (image 1,
        // channel 0) pass, du = [−1, 3] there: dx = 2·du, da = 0.5·(−1) + 0·3.
        let mut dx = du;
        backward(&x, &a, Some((&y, 2.0)), 2, &mut dx, true, &mut da, &mut db);
        assert_eq!(dx, [0.0, 0.0, 0.0, 0.0, -2.0, 6.0, 0.0, 0.0]);
        assert_eq!((da, db), ([-0.5, 0.0], [2.0, 0.0]));
        // Without x's gradient the sums are the same and grad is left as scratch.
        let mut scratch = du;
        backward(&x, &a, Some((&y, 2.0)), 2, &mut scratch, false, &mut da, &mut db);
        assert_eq!((da, db), ([-0.5, 0.0], [2.0, 0.0]));
    }

    /// The fused pass gives exactly what the ReLU's mask and then the affine
    /// backward gave as separate passes (the same sums in the same order).
    #[test]
    fn fused_equals_the_relu_mask_then_the_affine_backward() {
        let (images, channels, plane) = (3, 5, 37);
        let len = images * channels * plane;
        let value = |i: usize, k: usize| (((i * k + 11) * 2654435761) % 1000) as f32 / 97.0 - 5.0;
        let x: Vec<f32> = (0..len).map(|i| value(i, 3)).collect();
        let grad: Vec<f32> = (0..len).map(|i| value(i, 7) / 3.0).collect();
        let a: Vec<f32> = (0..channels).map(|c| 0.3 + c as f32 * 0.7).collect();
        let b: Vec<f32> = (0..channels).map(|c| c as f32 - 2.0).collect();
        let y = forward_into(&x, &a, &b, Some(6.0), plane);
        let mut du = grad.clone();
        super::super::conv::relu_backward(&y, 6.0, &mut du);
        let (mut want_da, mut want_db) = (vec![0.0; channels], vec![0.0; channels]);
        let mut want_dx = du.clone();
        backward(&x, &a, None, plane, &mut want_dx, true, &mut want_da, &mut want_db);
        let (mut da, mut db, mut dx) = (vec![0.0; channels], vec![0.0; channels], grad.clone());
        backward(&x, &a, Some((&y, 6.0)), plane, &mut dx, true, &mut da, &mut db);
        assert_eq!((dx, da, db), (want_dx, want_da, want_db));
    }
}
