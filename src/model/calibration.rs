//! A model's calibration: what it applies to its P(positive) before it
//! answers, so it can be adapted to a new image set without retraining: a
//! temperature that softens (or sharpens) the score, a shift of its log-odds
//! (a prior correction, Saerens et al. 2002: a model trained where a share π
//! of the images were positive, applied where a share P are, adds
//! `logit(P) − logit(π)`), and the threshold above which it says "positive".
//! Stored in the model card; fitted by `eval::calibration`.

use serde::{Deserialize, Serialize};

/// Scores are clipped away from 0 and 1 before taking log-odds (as the log loss clips them).
const EPS: f64 = 1e-7;

/// What a calibrated model applies to its P(positive) `p`:
/// `σ(logit(p) / temperature + shift)`, then "positive" above `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub temperature: f64,
    pub shift: f64,
    pub threshold: f64,
    /// How and on what it was fitted, in words.
    pub fitted: String,
}

impl Calibration {
    /// No change: temperature 1, no shift, threshold ½.
    pub fn identity() -> Calibration {
        Calibration { temperature: 1.0, shift: 0.0, threshold: 0.5, fitted: String::new() }
    }

    pub fn apply(&self, p: f64) -> f64 {
        sigmoid(logit(p) / self.temperature + self.shift)
    }

    /// The answer for a calibrated score.
    pub fn is_positive(&self, calibrated: f64) -> bool {
        calibrated > self.threshold
    }
}

/// Log-odds, of a probability clipped to [10⁻⁷, 1 − 10⁻⁷].
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(EPS, 1.0 - EPS);
    (p / (1.0 - p)).ln()
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The log-odds shift that moves a model trained where a share `trained` of
/// the images were positive to a set where a share `target` are.
pub fn prior_shift(trained: f64, target: f64) -> f64 {
    logit(target) - logit(trained)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prior_correction_by_hand() {
        // Trained where 70 % were positive, applied where 35 % are:
        // shift = ln(0.35/0.65) − ln(0.7/0.3) = −0.6190 − 0.8473 = −1.4663.
        let shift = prior_shift(0.7, 0.35);
        assert!((shift - (-1.466337)).abs() < 1e-6, "{shift}");
        let c = Calibration { temperature: 1.0, shift, threshold: 0.5, fitted: String::new() };
        // p = 0.8: logit 1.386294 − 1.466337 = −0.080043 → σ = 0.48000
        assert!((c.apply(0.8) - 0.480000).abs() < 1e-5, "{}", c.apply(0.8));
        assert!(!c.is_positive(c.apply(0.8)));
        assert_eq!(Calibration::identity().apply(0.8), 0.8);
    }
}
