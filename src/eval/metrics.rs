//! Accuracy, its mean and spread over folds, and the checks that catch a
//! network whose answers are degenerate (tied or constant).

use serde::{Deserialize, Serialize};

/// The predicted class: positive when P(positive) > P(negative). Outputs
/// beyond the first two (a 1,000- or 4,096-way softmax kept by raw surgery)
/// are ignored: the label is read from outputs 0 and 1.
pub fn predicted(probs: &[f32]) -> usize {
    usize::from(probs[1] > probs[0])
}

/// P(positive) among the two sentiment outputs (a K-way softmax kept by raw
/// surgery is read on outputs 0 and 1, as [`predicted`] is); ½ when both are 0.
pub fn positive_probability(probs: &[f32]) -> f32 {
    let s = probs[0] + probs[1];
    if s > 0.0 {
        probs[1] / s
    } else {
        0.5
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub accuracy: f64,
    /// Images whose two scores are exactly equal (no decision).
    pub tied: usize,
    pub predicted_positive: usize,
    pub images: usize,
    /// Set when the answers are degenerate: then the accuracy means nothing.
    pub degenerate: Option<String>,
}

pub fn score(probs: &[Vec<f32>], labels: &[usize]) -> Scored {
    let n = labels.len();
    let correct = probs.iter().zip(labels).filter(|(p, &y)| predicted(p) == y).count();
    let tied = probs.iter().filter(|p| p[0] == p[1]).count();
    let positive = probs.iter().filter(|p| predicted(p) == 1).count();
    let degenerate = if tied * 20 > n {
        Some(format!("{tied} of {n} test images have tied scores (e.g. a ReLU zeroed both outputs)"))
    } else if positive == 0 || positive == n {
        Some(format!("every test image is predicted {}", if positive == n { "positive" } else { "negative" }))
    } else {
        None
    };
    Scored { accuracy: correct as f64 / n.max(1) as f64, tied, predicted_positive: positive, images: n, degenerate }
}

/// Mean and population standard deviation (ddof 0, as NumPy's default).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_ties_and_constant_answers() {
        let s = score(&[vec![0.2, 0.8], vec![0.9, 0.1], vec![0.4, 0.6]], &[1, 0, 0]);
        assert!((s.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.degenerate, None);
        let tied = score(&vec![vec![0.5, 0.5]; 10], &[1; 10]);
        assert!(tied.degenerate.unwrap().contains("10 of 10 test images have tied scores"));
        let constant = score(&[vec![0.1, 0.9], vec![0.2, 0.8]], &[1, 0]);
        assert_eq!(constant.degenerate.as_deref(), Some("every test image is predicted positive"));
        let (m, s) = mean_std(&[0.8, 0.9]);
        assert!((m - 0.85).abs() < 1e-12 && (s - 0.05).abs() < 1e-12);
    }
}
