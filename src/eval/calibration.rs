//! Fitting a model's [`Calibration`] on labelled calibration images:
//!
//! - **temperature** (Guo et al. 2017): `logit / T`, T minimising the log
//!   loss; the ranking is unchanged;
//! - **threshold**: the one that maximises balanced accuracy, so a set with
//!   another class balance is not answered "positive" wholesale.
//!
//! Written here: two one-dimensional fits over a score vector (a golden
//! section search and a sort) need no optimisation crate.

use super::binary_metrics::{binary_metrics, log_loss};
use crate::model::calibration::{logit, sigmoid};
#[cfg(doc)]
use crate::model::calibration::Calibration;

/// The temperature in [e⁻⁴, e⁴] minimising the log loss of `scores` against
/// `labels` (golden section search on ln T; the loss is unimodal in it).
pub fn fit_temperature(scores: &[f64], labels: &[usize]) -> f64 {
    let logits: Vec<f64> = scores.iter().map(|&p| logit(p)).collect();
    let loss = |ln_t: f64| {
        let t = ln_t.exp();
        log_loss(&logits.iter().map(|&z| sigmoid(z / t)).collect::<Vec<_>>(), labels)
    };
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (-4.0f64, 4.0f64);
    let (mut c, mut d) = (b - ratio * (b - a), a + ratio * (b - a));
    let (mut fc, mut fd) = (loss(c), loss(d));
    for _ in 0..80 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - ratio * (b - a);
            fc = loss(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + ratio * (b - a);
            fd = loss(d);
        }
    }
    ((a + b) / 2.0).exp()
}

/// The threshold maximising balanced accuracy of `scores > threshold`: ½ or
/// the midpoint between two neighbouring distinct scores, the one nearest ½
/// among equally good ones.
pub fn fit_threshold(scores: &[f64], labels: &[usize]) -> f64 {
    let mut distinct: Vec<f64> = scores.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let candidates = std::iter::once(0.5).chain(distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    let mut best: (f64, f64) = (f64::NEG_INFINITY, 0.5);
    for t in candidates {
        let b = binary_metrics(scores, labels, t).balanced_accuracy;
        if b > best.0 + 1e-12 || ((b - best.0).abs() <= 1e-12 && (t - 0.5).abs() < (best.1 - 0.5).abs()) {
            best = (b, t);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_softens_overconfident_scores() {
        // Logits ±3 but only 3 of 4 right each side: the loss-minimising
        // temperature makes σ(3/T) = 0.75, T = 3 / ln 3.
        let scores: Vec<f64> = [3.0, 3.0, 3.0, 3.0, -3.0, -3.0, -3.0, -3.0].iter().map(|&z| sigmoid(z)).collect();
        let labels = [1, 1, 1, 0, 0, 0, 0, 1];
        let t = fit_temperature(&scores, &labels);
        assert!((t - 3.0 / 3f64.ln()).abs() < 1e-4, "{t}");
    }

    #[test]
    fn threshold_follows_the_class_balance() {
        // A model that says "positive" to everything above ½ but ranks well:
        // negatives at 0.6, 0.65, 0.7, positives at 0.8, 0.9.
        let scores = [0.6, 0.65, 0.7, 0.8, 0.9];
        let labels = [0, 0, 0, 1, 1];
        let t = fit_threshold(&scores, &labels);
        assert!((t - 0.75).abs() < 1e-12, "{t}");
        assert_eq!(binary_metrics(&scores, &labels, t).balanced_accuracy, 1.0);
        // Already right at ½: ½ stays.
        assert_eq!(fit_threshold(&[0.2, 0.9], &[0, 1]), 0.5);
    }
}
