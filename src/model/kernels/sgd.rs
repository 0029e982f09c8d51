//! One SGD update of a parameter blob in place (Caffe's solver, see
//! `train::solver`): `diff = g + decay · (w − anchor)`,
//! `h ← momentum · h + rate · diff`, `w ← w − h`, in that order of
//! operations, so the numbers are those of the tensor expression it replaces.
//!
//! Why by hand: as burn tensor operations the update made five fresh blobs
//! per parameter blob (the operands are shared, so nothing runs in place);
//! for CaffeNet's 57 million parameters that is 1.1 GB of new pages per
//! iteration, and the kernel's page clearing was a quarter of a training
//! step (`perf record` on `deepsent bench --mode train`).

use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Update {
    pub rate: f32,
    pub decay: f32,
    pub momentum: f32,
}

const CHUNK: usize = 1 << 14;

/// Updates `w` and `h` in place from the gradient `g` (and the weights decay
/// pulls toward, zero when `None`).
pub fn step(u: Update, w: &mut [f32], h: &mut [f32], g: &[f32], anchor: Option<&[f32]>) {
    assert_eq!(w.len(), h.len());
    assert_eq!(w.len(), g.len());
    let apply = |w: &mut [f32], h: &mut [f32], g: &[f32], a: Option<&[f32]>| {
        for i in 0..w.len() {
            let diff = if u.decay != 0.0 {
                let pull = match a {
                    Some(a) => w[i] - a[i],
                    None => w[i],
                };
                g[i] + pull * u.decay
            } else {
                g[i]
            };
            h[i] = h[i] * u.momentum + diff * u.rate;
            w[i] -= h[i];
        }
    };
    let w = w.par_chunks_mut(CHUNK).zip(h.par_chunks_mut(CHUNK)).zip(g.par_chunks(CHUNK));
    match anchor {
        Some(a) => {
            assert_eq!(a.len(), g.len());
            w.zip(a.par_chunks(CHUNK)).for_each(|(((w, h), g), a)| apply(w, h, g, Some(a)));
        }
        None => w.for_each(|((w, h), g)| apply(w, h, g, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_update_by_hand() {
        let u = Update { rate: 0.5, decay: 0.1, momentum: 0.9 };
        let (mut w, mut h) = ([1.0f32, -2.0], [0.2f32, 0.0]);
        step(u, &mut w, &mut h, &[0.4, 1.0], None);
        // diff = 0.4 + 0.1·1 = 0.5, h = 0.18 + 0.25 = 0.43, w = 0.57;
        // diff = 1 − 0.2 = 0.8, h = 0.4, w = −2.4.
        assert!((h[0] - 0.43).abs() < 1e-6 && (w[0] - 0.57).abs() < 1e-6, "{h:?} {w:?}");
        assert!((h[1] - 0.4).abs() < 1e-6 && (w[1] + 2.4).abs() < 1e-6, "{h:?} {w:?}");
        // Toward an anchor: w = a gives no pull.
        let (mut w, mut h) = ([3.0f32], [0.0f32]);
        step(u, &mut w, &mut h, &[0.0], Some(&[3.0]));
        assert_eq!((w[0], h[0]), (3.0, 0.0));
    }
}
