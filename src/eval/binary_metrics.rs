//! What a user needs to judge a sentiment model on labelled images beyond
//! accuracy: ranking (ROC AUC, PR AUC), class balance (balanced accuracy,
//! the rate of positive answers beside the true one), per-class precision,
//! recall and F1, and calibration (log loss, Brier score, expected
//! calibration error with its reliability bins), each with a bootstrap 95 %
//! interval.
//!
//! Written here: the Rust statistics crates (linfa, smartcore) bring a
//! matrix library and a model API for what is a sort and a few sums over a
//! score vector. The definitions follow scikit-learn's, and the tests check
//! every value against a scikit-learn run (`scripts/metrics_sklearn.py`).

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Clipping of probabilities in the log loss (scikit-learn's, for float32 scores).
const LOG_LOSS_EPS: f64 = 1e-7;
/// Equal-width bins of the expected calibration error and the reliability diagram.
pub const CALIBRATION_BINS: usize = 10;

/// Counts at the threshold (½ unless calibrated); "positive" is class 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub true_positive: usize,
    pub false_positive: usize,
    pub true_negative: usize,
    pub false_negative: usize,
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// One bin of the reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub low: f64,
    pub high: f64,
    pub images: usize,
    /// Mean P(positive) of the images in the bin.
    pub mean_score: f64,
    /// Fraction of them that are positive.
    pub positive_fraction: f64,
}

/// The point metrics of one score vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub images: usize,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub roc_auc: f64,
    /// Average precision (the step-wise area under the precision-recall curve, as scikit-learn).
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub ece: f64,
    /// Fraction of images answered positive, and fraction that are positive.
    pub positive_rate: f64,
    pub true_positive_rate_of_data: f64,
    pub confusion: Confusion,
    pub positive_class: ClassScores,
    pub negative_class: ClassScores,
    pub reliability: Vec<ReliabilityBin>,
}

/// Metrics of P(positive) `scores` against `labels` (0 or 1), answering
/// "positive" above `threshold` (½, or a calibrated model's own). NaN where a
/// metric is undefined (ROC AUC with one class only).
pub fn binary_metrics(scores: &[f64], labels: &[usize], threshold: f64) -> BinaryMetrics {
    assert_eq!(scores.len(), labels.len(), "one score per label");
    let n = labels.len();
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let mut c = Confusion { true_positive: 0, false_positive: 0, true_negative: 0, false_negative: 0 };
    for (&s, &y) in scores.iter().zip(labels) {
        match (s > threshold, y == 1) {
            (true, true) => c.true_positive += 1,
            (true, false) => c.false_positive += 1,
            (false, false) => c.true_negative += 1,
            (false, true) => c.false_negative += 1,
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let class = |tp: usize, fp: usize, fn_: usize| {
        let (precision, recall) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
        ClassScores { precision, recall, f1: if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) } }
    };
    let positive_class = class(c.true_positive, c.false_positive, c.false_negative);
    let negative_class = class(c.true_negative, c.false_negative, c.false_positive);
    let reliability = reliability(scores, labels);
    let ece = reliability.iter().filter(|b| b.images > 0).map(|b| b.images as f64 / n.max(1) as f64 * (b.mean_score - b.positive_fraction).abs()).sum();
    BinaryMetrics {
        images: n,
        accuracy: ratio(c.true_positive + c.true_negative, n),
        balanced_accuracy: (positive_class.recall + negative_class.recall) / 2.0,
        roc_auc: roc_auc(scores, labels),
        pr_auc: average_precision(scores, labels),
        log_loss: log_loss(scores, labels),
        brier: scores.iter().zip(labels).map(|(&s, &y)| (s - y as f64).powi(2)).sum::<f64>() / n.max(1) as f64,
        ece,
        positive_rate: ratio(c.true_positive + c.false_positive, n),
        true_positive_rate_of_data: ratio(positives, n),
        confusion: c,
        positive_class,
        negative_class,
        reliability,
    }
}

/// Mean −log P(true class), P(positive) clipped to [10⁻⁷, 1 − 10⁻⁷].
pub fn log_loss(scores: &[f64], labels: &[usize]) -> f64 {
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(&s, &y)| {
            let p = s.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            -(if y == 1 { p.ln() } else { (1.0 - p).ln() })
        })
        .sum();
    total / labels.len().max(1) as f64
}

/// ROC AUC as the Mann-Whitney statistic: the probability that a random
/// positive scores above a random negative, ties counting one half.
fn roc_auc(scores: &[f64], labels: &[usize]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks (1-based) over runs of equal scores.
    let mut rank_sum_positive = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_positive += order[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64 * mean_rank;
        i = j + 1;
    }
    let p = labels.iter().filter(|&&y| y == 1).count() as f64;
    let q = labels.len() as f64 - p;
    if p == 0.0 || q == 0.0 {
        return f64::NAN;
    }
    (rank_sum_positive - p * (p + 1.0) / 2.0) / (p * q)
}

/// One threshold of a score vector: the images scoring at least `threshold`
/// are answered positive; `true_positive` and `false_positive` count them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OperatingPoint {
    pub threshold: f64,
    pub true_positive: usize,
    pub false_positive: usize,
}

/// Every distinct score as a threshold, from the highest down (the points of
/// the ROC and precision-recall curves); tied images cross together.
pub fn operating_points(scores: &[f64], labels: &[usize]) -> Vec<OperatingPoint> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut points, mut tp, mut fp, mut i) = (Vec::new(), 0, 0, 0);
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        points.push(OperatingPoint { threshold: scores[order[i]], true_positive: tp, false_positive: fp });
        i = j;
    }
    points
}

/// Average precision: Σ (recall_k − recall_{k−1}) · precision_k over the
/// distinct score thresholds, from the highest (scikit-learn's definition).
fn average_precision(scores: &[f64], labels: &[usize]) -> f64 {
    let positives = labels.iter().filter(|&&y| y == 1).count();
    if positives == 0 {
        return f64::NAN;
    }
    let mut last_recall = 0.0;
    operating_points(scores, labels)
        .iter()
        .map(|p| {
            let recall = p.true_positive as f64 / positives as f64;
            let step = (recall - last_recall) * p.true_positive as f64 / (p.true_positive + p.false_positive) as f64;
            last_recall = recall;
            step
        })
        .sum()
}

/// Equal-width bins of P(positive) (the last one closed at 1).
fn reliability(scores: &[f64], labels: &[usize]) -> Vec<ReliabilityBin> {
    let mut sums = vec![(0usize, 0.0f64, 0usize); CALIBRATION_BINS];
    for (&s, &y) in scores.iter().zip(labels) {
        let bin = ((s * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += s;
        sums[bin].2 += y;
    }
    sums.into_iter()
        .enumerate()
        .map(|(b, (images, score_sum, positive))| ReliabilityBin {
            low: b as f64 / CALIBRATION_BINS as f64,
            high: (b + 1) as f64 / CALIBRATION_BINS as f64,
            images,
            mean_score: if images == 0 { f64::NAN } else { score_sum / images as f64 },
            positive_fraction: if images == 0 { f64::NAN } else { positive as f64 / images as f64 },
        })
        .collect()
}

/// A 95 % interval: the 2.5th and 97.5th percentiles over bootstrap resamples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Percentile bootstrap intervals of the scalar metrics (`resamples` draws
/// of the images with replacement, seeded: the same seed gives the same
/// intervals), by metric name as in [`BinaryMetrics`].
pub fn bootstrap(scores: &[f64], labels: &[usize], threshold: f64, resamples: usize, seed: u64) -> Vec<(&'static str, Interval)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = labels.len();
    let mut draws: Vec<[f64; 9]> = Vec::with_capacity(resamples);
    let (mut s, mut y) = (vec![0.0; n], vec![0usize; n]);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.gen_range(0..n);
            s[k] = scores[i];
            y[k] = labels[i];
        }
        draws.push(scalars(&binary_metrics(&s, &y, threshold)));
    }
    SCALARS
        .iter()
        .enumerate()
        .map(|(m, &name)| {
            let mut v: Vec<f64> = draws.iter().map(|d| d[m]).filter(|x| x.is_finite()).collect();
            v.sort_by(f64::total_cmp);
            let at = |q: f64| if v.is_empty() { f64::NAN } else { v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)] };
            (name, Interval { low: at(0.025), high: at(0.975) })
        })
        .collect()
}

/// The scalar metrics, in the order of [`SCALARS`].
const SCALARS: [&str; 9] = ["accuracy", "balanced_accuracy", "roc_auc", "pr_auc", "log_loss", "brier", "ece", "positive_rate", "positive_f1"];

fn scalars(m: &BinaryMetrics) -> [f64; 9] {
    [m.accuracy, m.balanced_accuracy, m.roc_auc, m.pr_auc, m.log_loss, m.brier, m.ece, m.positive_rate, m.positive_class.f1]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed score vector with ties, both classes and a skewed balance.
    fn case() -> (Vec<f64>, Vec<usize>) {
        let scores = vec![0.95, 0.9, 0.8, 0.8, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.2, 0.1, 0.52, 0.8, 0.62, 0.33, 0.99];
        let labels = vec![1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1];
        (scores, labels)
    }

    /// Values from scikit-learn 1.x on `case()` (`scripts/metrics_sklearn.py`
    /// prints them): accuracy_score, balanced_accuracy_score, roc_auc_score,
    /// average_precision_score, log_loss, brier_score_loss, and
    /// precision_recall_fscore_support at the 0.5 threshold (`score > 0.5`).
    #[test]
    fn every_metric_matches_scikit_learn() {
        let (s, y) = case();
        let m = binary_metrics(&s, &y, 0.5);
        let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-9, "{what}: {a} vs scikit-learn {b}");
        close(m.accuracy, SK_ACCURACY, "accuracy");
        close(m.balanced_accuracy, SK_BALANCED_ACCURACY, "balanced accuracy");
        close(m.roc_auc, SK_ROC_AUC, "ROC AUC");
        close(m.pr_auc, SK_AVERAGE_PRECISION, "average precision");
        close(m.log_loss, SK_LOG_LOSS, "log loss");
        close(m.brier, SK_BRIER, "Brier");
        close(m.positive_class.precision, SK_PRECISION[1], "precision of positives");
        close(m.positive_class.recall, SK_RECALL[1], "recall of positives");
        close(m.positive_class.f1, SK_F1[1], "F1 of positives");
        close(m.negative_class.precision, SK_PRECISION[0], "precision of negatives");
        close(m.negative_class.recall, SK_RECALL[0], "recall of negatives");
        close(m.negative_class.f1, SK_F1[0], "F1 of negatives");
        assert_eq!(m.confusion, Confusion { true_positive: SK_CONFUSION[1][1], false_positive: SK_CONFUSION[0][1], true_negative: SK_CONFUSION[0][0], false_negative: SK_CONFUSION[1][0] });
    }

    #[test]
    fn calibration_error_by_hand_and_bootstrap_is_seeded() {
        // Two bins used: 0.2 (two images, one positive) and 0.9 (two, both positive).
        let m = binary_metrics(&[0.2, 0.2, 0.9, 0.9], &[0, 1, 1, 1], 0.5);
        // ECE = ½·|0.2 − 0.5| + ½·|0.9 − 1.0| = 0.15 + 0.05.
        assert!((m.ece - 0.2).abs() < 1e-12, "{}", m.ece);
        assert_eq!(m.reliability.iter().map(|b| b.images).collect::<Vec<_>>(), [0, 0, 2, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!((m.positive_rate, m.true_positive_rate_of_data), (0.5, 0.75));
        let (s, y) = case();
        let a = bootstrap(&s, &y, 0.5, 200, 7);
        assert_eq!(a, bootstrap(&s, &y, 0.5, 200, 7));
        let point = binary_metrics(&s, &y, 0.5);
        let (_, auc) = a.iter().find(|(n, _)| *n == "roc_auc").unwrap();
        assert!(auc.low < point.roc_auc && point.roc_auc < auc.high, "{auc:?} around {}", point.roc_auc);
    }

    // From scripts/metrics_sklearn.py, pasted:
    // scikit-learn 1.9.1
    const SK_ACCURACY: f64 = 0.65;
    const SK_BALANCED_ACCURACY: f64 = 0.6414141414141414;
    const SK_ROC_AUC: f64 = 0.7474747474747474;
    const SK_AVERAGE_PRECISION: f64 = 0.8153540903540903;
    const SK_LOG_LOSS: f64 = 0.614238880491506;
    const SK_BRIER: f64 = 0.21031500000000003;
    const SK_PRECISION: [f64; 2] = [0.625, 0.6666666666666666];
    const SK_RECALL: [f64; 2] = [0.5555555555555556, 0.7272727272727273];
    const SK_F1: [f64; 2] = [0.5882352941176471, 0.6956521739130435];
    const SK_CONFUSION: [[usize; 2]; 2] = [[5, 4], [3, 8]];
}
