//! Local response normalisation across channels (Caffe's LRN, as in
//! CaffeNet's norm1 and norm2), forward and input gradient, on NCHW `f32`
//! slices:
//!
//! `s[c] = k + α/n · Σ_{|c'−c| ≤ n/2} x[c']²`, `y[c] = x[c] · s[c]^−β`,
//! `dx[c] = dy[c] · s[c]^−β − (2αβ/n) · x[c] · Σ_{|c'−c| ≤ n/2} dy[c'] · x[c'] · s[c']^−β / s[c']`.
//!
//! The window is symmetric because the layer spec only admits odd `n`, as
//! Caffe does. The backward pass recomputes `s` from `x` rather than keeping
//! a blob of it from the forward pass: one more pass over a small blob,
//! against a blob's worth of memory per LRN layer for the whole step.
//!
//! Why by hand: burn's composition (square, an average pool over a reshaped
//! channel axis, a power and a division, each a pass that allocates a blob,
//! and their gradients) took 17 % of CaffeNet's training step (`deepsent
//! bench --profile`); here it is one pass per image while its planes are in cache.

use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub batch: usize,
    pub channels: usize,
    /// Height × width.
    pub plane: usize,
    /// The window `n` (odd).
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl Geometry {
    fn image_len(&self) -> usize {
        self.channels * self.plane
    }
    /// The channels in the window of channel `c`.
    fn window(&self, c: usize) -> std::ops::Range<usize> {
        let half = self.size / 2;
        c.saturating_sub(half)..(c + half + 1).min(self.channels)
    }
}

/// `s^−β`, with β = 0.75 (CaffeNet's) and 1 through square roots and a
/// division, which vectorise, where `powf` does not.
fn inverse_power(beta: f32) -> impl Fn(f32) -> f32 + Copy {
    move |s: f32| {
        if beta == 0.75 {
            let r = s.sqrt();
            1.0 / (r * r.sqrt())
        } else if beta == 1.0 {
            1.0 / s
        } else {
            s.powf(-beta)
        }
    }
}

/// `s` for every channel of one image into `scale`, from the squares `sq`.
fn scales(g: &Geometry, sq: &[f32], scale: &mut [f32]) {
    let per = g.alpha / g.size as f32;
    for (c, s) in scale.chunks_mut(g.plane).enumerate() {
        s.fill(g.k);
        for near in g.window(c) {
            s.iter_mut().zip(&sq[near * g.plane..(near + 1) * g.plane]).for_each(|(s, q)| *s += per * q);
        }
    }
}

/// Forward: `y` (N × C × H × W) from `x`.
pub fn forward(g: &Geometry, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), g.batch * g.image_len());
    assert_eq!(y.len(), x.len());
    let inv_pow = inverse_power(g.beta);
    y.par_chunks_mut(g.image_len()).zip(x.par_chunks(g.image_len())).for_each_init(
        || vec![0.0f32; g.image_len()],
        |sq, (y, x)| {
            sq.iter_mut().zip(x.iter()).for_each(|(q, v)| *q = v * v);
            // The scales go into y, then y = x · s^−β in place.
            scales(g, sq, y);
            y.iter_mut().zip(x.iter()).for_each(|(y, v)| *y = v * inv_pow(*y));
        },
    );
}

/// Input gradient: `dx` from `x` and the output gradient `dy`.
pub fn input_grad(g: &Geometry, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(x.len(), g.batch * g.image_len());
    assert_eq!(dy.len(), x.len());
    assert_eq!(dx.len(), x.len());
    let inv_pow = inverse_power(g.beta);
    let coeff = 2.0 * g.alpha * g.beta / g.size as f32;
    dx.par_chunks_mut(g.image_len()).zip(x.par_chunks(g.image_len())).zip(dy.par_chunks(g.image_len())).for_each_init(
        || (vec![0.0f32; g.image_len()], vec![0.0f32; g.image_len()]),
        |(sq, pow), ((dx, x), dy)| {
            sq.iter_mut().zip(x.iter()).for_each(|(q, v)| *q = v * v);
            scales(g, sq, pow);
            // pow ← s^−β; sq ← dy · x · s^−β / s (the squares are no longer needed).
            for (((p, r), &v), &d) in pow.iter_mut().zip(sq.iter_mut()).zip(x.iter()).zip(dy.iter()) {
                let s = *p;
                *p = inv_pow(s);
                *r = d * v * *p / s;
            }
            let ratio = &*sq;
            for (c, dx) in dx.chunks_mut(g.plane).enumerate() {
                let at = c * g.plane..(c + 1) * g.plane;
                dx.fill(0.0);
                for near in g.window(c) {
                    dx.iter_mut().zip(&ratio[near * g.plane..(near + 1) * g.plane]).for_each(|(a, r)| *a += r);
                }
                for (((a, &v), &d), &p) in dx.iter_mut().zip(&x[at.clone()]).zip(&dy[at.clone()]).zip(&pow[at]) {
                    *a = d * p - coeff * v * *a;
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition in f64, channel by channel.
    fn reference(g: &Geometry, x: &[f32]) -> Vec<f64> {
        let mut y = vec![0.0f64; x.len()];
        let half = (g.size / 2) as isize;
        for n in 0..g.batch {
            for c in 0..g.channels {
                for p in 0..g.plane {
                    let at = |c: usize| (n * g.channels + c) * g.plane + p;
                    let sum: f64 = (c as isize - half..=c as isize + half)
                        .filter(|&o| o >= 0 && (o as usize) < g.channels)
                        .map(|o| (x[at(o as usize)] as f64).powi(2))
                        .sum();
                    let s = g.k as f64 + g.alpha as f64 / g.size as f64 * sum;
                    y[at(c)] = x[at(c)] as f64 * s.powf(-(g.beta as f64));
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn forward_and_gradient_match_the_definition() {
        // CaffeNet's β = 0.75 (square-root path), β = 1 and a general β; a
        // window wider than the channels; one image and several.
        for (batch, channels, plane, size, alpha, beta, k) in [(2, 7, 5, 5, 1e-1, 0.75, 1.0), (1, 3, 4, 5, 2.0, 1.0, 2.0), (3, 6, 2, 3, 0.5, 0.6, 1.5)] {
            let g = Geometry { batch, channels, plane, size, alpha, beta, k };
            let x = values(batch * channels * plane, 7);
            let dy = values(x.len(), 11);
            let mut y = vec![0.0f32; x.len()];
            forward(&g, &x, &mut y);
            for (got, want) in y.iter().zip(reference(&g, &x)) {
                assert!((*got as f64 - want).abs() < 1e-5 * (1.0 + want.abs()), "forward {got} vs {want} in {g:?}");
            }
            // The gradient of Σ dy · y(x) by central differences of the f64 definition.
            let mut dx = vec![0.0f32; x.len()];
            input_grad(&g, &x, &dy, &mut dx);
            let loss = |x: &[f32]| -> f64 { reference(&g, x).iter().zip(&dy).map(|(y, d)| y * *d as f64).sum() };
            for i in 0..x.len() {
                let h = 1e-3f32;
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let numeric = (loss(&up) - loss(&down)) / (up[i] as f64 - down[i] as f64);
                assert!((dx[i] as f64 - numeric).abs() < 1e-3 * (1.0 + numeric.abs()), "dx[{i}] {} vs {numeric} in {g:?}", dx[i]);
            }
        }
    }
}
