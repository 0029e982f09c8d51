//! `metrics.md` of `deepsent evaluate`: every metric with its 95 % interval,
//! per view, and the reliability bins.

use crate::eval::evaluate::{Evaluation, ViewMetrics};
use std::fmt::Write;

/// The metrics in the order a reader wants them, with how to read each.
const ROWS: [(&str, &str); 9] = [
    ("accuracy", "answers right (at the 0.5 threshold, or a calibrated model's own)"),
    ("balanced_accuracy", "mean of the recalls of both classes: accuracy with the classes weighted equally"),
    ("roc_auc", "P(a random positive scores above a random negative): ranking, whatever the threshold"),
    ("pr_auc", "average precision over the ranking (positives)"),
    ("positive_f1", "F1 of the positive class"),
    ("positive_rate", "fraction answered positive (compare with the fraction that is positive)"),
    ("log_loss", "mean −log P(true class): lower is better"),
    ("brier", "mean squared error of P(positive): lower is better"),
    ("ece", "expected calibration error over 10 bins: lower is better"),
];

pub fn markdown(e: &Evaluation, model: &str, data: &str) -> String {
    let mut md = String::new();
    let m = &e.center.metrics;
    let _ = writeln!(md, "# `{model}` on {data}\n");
    let _ = writeln!(md, "{} images, {:.1} % positive. Intervals: 95 % percentile bootstrap ({} resamples, seed {}).\n", m.images, 100.0 * m.true_positive_rate_of_data, crate::eval::evaluate::RESAMPLES, crate::eval::evaluate::SEED);
    if let Some(c) = &e.calibration {
        let _ = writeln!(md, "Scores calibrated: log-odds ÷ {:.3} {:+.3}, answer positive above {:.3} ({}).\n", c.temperature, c.shift, c.threshold, c.fitted);
    }
    let views: Vec<(&str, &ViewMetrics)> = std::iter::once(("centre crop", &e.center)).chain(e.ten_crop.as_ref().map(|t| ("10-crop", t))).collect();
    let _ = writeln!(md, "| metric | {} | meaning |", views.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(md, "|---|{}---|", "---|".repeat(views.len()));
    for (name, meaning) in ROWS {
        let cells: Vec<String> = views.iter().map(|(_, v)| cell(v, name)).collect();
        let _ = writeln!(md, "| {name} | {} | {meaning} |", cells.join(" | "));
    }
    for (view, v) in &views {
        let c = v.metrics.confusion;
        let (p, n) = (v.metrics.positive_class, v.metrics.negative_class);
        let _ = writeln!(md, "\n## {view}\n");
        let _ = writeln!(md, "| | answered positive | answered negative |\n|---|---|---|\n| positive | {} | {} |\n| negative | {} | {} |\n", c.true_positive, c.false_negative, c.false_positive, c.true_negative);
        let _ = writeln!(md, "| class | precision | recall | F1 |\n|---|---|---|---|\n| positive | {:.3} | {:.3} | {:.3} |\n| negative | {:.3} | {:.3} | {:.3} |\n", p.precision, p.recall, p.f1, n.precision, n.recall, n.f1);
        let _ = writeln!(md, "Reliability (P(positive) bin: images, mean score, fraction positive):\n");
        let _ = writeln!(md, "| bin | images | mean score | positive |\n|---|---|---|---|");
        for b in v.metrics.reliability.iter().filter(|b| b.images > 0) {
            let _ = writeln!(md, "| {:.1}–{:.1} | {} | {:.3} | {:.3} |", b.low, b.high, b.images, b.mean_score, b.positive_fraction);
        }
    }
    md
}

fn cell(v: &ViewMetrics, name: &str) -> String {
    let m = &v.metrics;
    let value = match name {
        "accuracy" => m.accuracy,
        "balanced_accuracy" => m.balanced_accuracy,
        "roc_auc" => m.roc_auc,
        "pr_auc" => m.pr_auc,
        "positive_f1" => m.positive_class.f1,
        "positive_rate" => m.positive_rate,
        "log_loss" => m.log_loss,
        "brier" => m.brier,
        _ => m.ece,
    };
    match v.interval.get(name) {
        Some(i) => format!("{value:.3} [{:.3}, {:.3}]", i.low, i.high),
        None => format!("{value:.3}"),
    }
}

/// What a calibration changed on the evaluated images: each headline metric
/// on the raw scores and on the calibrated ones, per view.
pub fn calibration_change(before: &Evaluation, after: &Evaluation) -> String {
    let mut md = String::from("\n## What the calibration changed (the same images, raw → calibrated)\n\n| metric | view | raw | calibrated |\n|---|---|---|---|\n");
    let pairs = std::iter::once(("centre crop", &before.center, &after.center)).chain(before.ten_crop.as_ref().zip(after.ten_crop.as_ref()).map(|(b, a)| ("10-crop", b, a)));
    for (view, b, a) in pairs {
        for name in ["accuracy", "balanced_accuracy", "positive_rate", "log_loss", "ece"] {
            let _ = writeln!(md, "| {name} | {view} | {} | {} |", cell(b, name), cell(a, name));
        }
    }
    md
}
