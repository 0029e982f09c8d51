//! A per-channel affine map and an optional clipped ReLU, `y = act(a_c · x + b_c)`,
//! on NCHW `f32` slices: what an inference-mode BatchNorm, a Scale and a
//! ReLU(6) that follow each other in place compute together (EfficientNet-Lite0
//! has 49 such chains). One pass over the blob forward and one backward,
//! where burn's broadcasting element-wise operations took five and allocated
//! a blob for each: half of EfficientNet-Lite0's training step (`deepsent
//! bench --profile`).

use rayon::prelude::*;

/// Forward: `y = act(a[c] · x + b[c])` over `planes` planes of `plane` values, channel = plane mod C.
pub fn forward(x: &[f32], a: &[f32], b: &[f32], relu_max: Option<f32>, plane: usize, y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    let channels = a.len();
    y.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(i, (y, x))| {
        let (a, b) = (a[i % channels], b[i % channels]);
        match relu_max {
            None => y.iter_mut().zip(x).for_each(|(y, x)| *y = a * x + b),
            Some(max) => y.iter_mut().zip(x).for_each(|(y, x)| *y = (a * x + b).max(0.0).min(max)),
        }
    });
}

/// Backward from `du`, the gradient before the activation (see
/// [`super::conv::relu_backward`]): `dx = a[c] · du`, and per channel
/// `da = Σ du · x`, `db = Σ du` over batch and positions.
pub fn backward(x: &[f32], a: &[f32], du: &[f32], plane: usize, dx: Option<&mut [f32]>, da: &mut [f32], db: &mut [f32]) {
    let channels = a.len();
    if let Some(dx) = dx {
        dx.par_chunks_mut(plane).zip(du.par_chunks(plane)).enumerate().for_each(|(i, (dx, du))| {
            let a = a[i % channels];
            dx.iter_mut().zip(du).for_each(|(dx, du)| *dx = a * du);
        });
    }
    let planes = x.len() / plane;
    let sums: Vec<(f64, f64)> = (0..channels)
        .into_par_iter()
        .map(|c| {
            let (mut sa, mut sb) = (0.0f64, 0.0f64);
            for p in (c..planes).step_by(channels) {
                let (x, du) = (&x[p * plane..(p + 1) * plane], &du[p * plane..(p + 1) * plane]);
                let (mut pa, mut pb) = (0.0f32, 0.0f32);
                for (x, du) in x.iter().zip(du) {
                    pa += x * du;
                    pb += du;
                }
                sa += pa as f64;
                sb += pb as f64;
            }
            (sa, sb)
        })
        .collect();
    for (c, (sa, sb)) in sums.into_iter().enumerate() {
        da[c] = sa as f32;
        db[c] = sb as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // 2 images × 2 channels × 2 positions.
        let x = [1.0, -2.0, 3.0, 4.0, 0.5, 0.0, -1.0, 10.0];
        let (a, b) = ([2.0, -1.0], [0.5, 1.0]);
        let mut y = [0.0; 8];
        forward(&x, &a, &b, None, 2, &mut y);
        assert_eq!(y, [2.5, -3.5, -2.0, -3.0, 1.5, 0.5, 2.0, -9.0]);
        forward(&x, &a, &b, Some(2.0), 2, &mut y);
        assert_eq!(y, [2.0, 0.0, 0.0, 0.0, 1.5, 0.5, 2.0, 0.0]);
        let du = [1.0, 1.0, 2.0, 0.0, -1.0, 3.0, 1.0, 1.0];
        let (mut dx, mut da, mut db) = ([0.0; 8], [0.0; 2], [0.0; 2]);
        backward(&x, &a, &du, 2, Some(&mut dx), &mut da, &mut db);
        assert_eq!(dx, [2.0, 2.0, -2.0, -0.0, -2.0, 6.0, -1.0, -1.0]);
        // channel 0: x·du = 1 − 2 − 0.5 + 0 = −1.5, Σdu = 1 + 1 − 1 + 3 = 4
        // channel 1: 6 + 0 − 1 + 10 = 15, Σdu = 2 + 0 + 1 + 1 = 4
        assert_eq!(da, [-1.5, 15.0]);
        assert_eq!(db, [4.0, 4.0]);
    }
}
