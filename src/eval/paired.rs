//! What fine-tuning gained over where it started, fold by fold: the paired
//! differences (after − before) of test accuracy, their mean, spread, the
//! folds improved, and a 95 % Student-t interval of the mean.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedSummary {
    pub folds: usize,
    /// Mean of after − before.
    pub mean: f64,
    /// Sample standard deviation of the differences (ddof 1).
    pub std: f64,
    pub improved: usize,
    pub worse: usize,
    pub unchanged: usize,
    /// 95 % interval of the mean difference: mean ± t(0.975, n − 1) · std / √n.
    pub ci95: (f64, f64),
}

/// Two-sided 95 % quantiles of Student's t for 1 … 30 degrees of freedom
/// (a table: folds are few, and no crate is needed for 30 numbers).
const T975: [f64; 30] = [
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450,
    2.119905, 2.109816, 2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
];

/// The summary of (before, after) pairs; None with fewer than two.
pub fn paired(pairs: &[(f64, f64)]) -> Option<PairedSummary> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let d: Vec<f64> = pairs.iter().map(|(before, after)| after - before).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let std = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let t = T975.get(n - 2).copied().unwrap_or(1.959964);
    let half = t * std / (n as f64).sqrt();
    // A difference below a millionth is rounding, not a change.
    let eps = 1e-6;
    Some(PairedSummary {
        folds: n,
        mean,
        std,
        improved: d.iter().filter(|&&x| x > eps).count(),
        worse: d.iter().filter(|&&x| x < -eps).count(),
        unchanged: d.iter().filter(|&&x| x.abs() <= eps).count(),
        ci95: (mean - half, mean + half),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_summary_by_hand() {
        // Differences 0.01, 0.02, −0.01, 0.03, 0: mean 0.01; squared deviations
        // 0, 1e-4, 4e-4, 4e-4, 1e-4 → variance 1e-3 / 4, std 0.0158114;
        // half-width 2.776445 · 0.0158114 / √5 = 0.0196324.
        let s = paired(&[(0.80, 0.81), (0.80, 0.82), (0.85, 0.84), (0.70, 0.73), (0.9, 0.9)]).unwrap();
        assert_eq!((s.folds, s.improved, s.worse, s.unchanged), (5, 3, 1, 1));
        assert!((s.mean - 0.01).abs() < 1e-12);
        assert!((s.std - 0.0158114).abs() < 1e-7);
        assert!((s.ci95.0 - (0.01 - 0.0196324)).abs() < 1e-6 && (s.ci95.1 - 0.0296324).abs() < 1e-6, "{s:?}");
        assert!(paired(&[(0.5, 0.6)]).is_none());
    }
}
