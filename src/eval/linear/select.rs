//! Choosing the regularisation C by an inner stratified k-fold on the
//! training part only: the function never receives the test part.

use super::newton::{fit_from, Classifier};
use nalgebra::DMatrix;

/// The search: a log grid of C values (relative to the features' scale) and
/// the number of inner folds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CSearch {
    /// Grid of C · mean(‖z‖²): scale-free, so one grid serves layers whose
    /// activations differ by orders of magnitude.
    pub relative_grid: Vec<f64>,
    pub inner_folds: usize,
}

impl Default for CSearch {
    fn default() -> Self {
        CSearch { relative_grid: (-4..=4).map(|k| 10f64.powi(k)).collect(), inner_folds: 3 }
    }
}

/// Picks C by inner cross-validation accuracy on the training rows (ties go
/// to the smaller C, the simpler model). Returns (C, inner accuracy).
pub fn select_c(kind: Classifier, z: &DMatrix<f64>, y: &[f64], search: &CSearch) -> (f64, f64) {
    let n = z.nrows();
    let mean_sq = (0..n).map(|i| z.row(i).norm_squared()).sum::<f64>() / n as f64;
    // Stratified assignment: each class dealt round-robin in order.
    let mut fold_of = vec![0usize; n];
    let mut next = 0;
    for class in [1.0, -1.0] {
        for i in (0..n).filter(|&i| y[i] == class) {
            fold_of[i] = next % search.inner_folds;
            next += 1;
        }
    }
    // Along the grid (ascending C) each fit starts from the previous one.
    let mut correct = vec![0usize; search.relative_grid.len()];
    for f in 0..search.inner_folds {
        let tr: Vec<usize> = (0..n).filter(|&i| fold_of[i] != f).collect();
        let te: Vec<usize> = (0..n).filter(|&i| fold_of[i] == f).collect();
        let (zt, zv) = (z.select_rows(&tr), z.select_rows(&te));
        let yt: Vec<f64> = tr.iter().map(|&i| y[i]).collect();
        let mut previous = None;
        for (g, c) in grid(search, mean_sq).enumerate() {
            let m = fit_from(kind, &zt, &yt, c, previous.as_ref());
            let d = m.decision(&zv);
            correct[g] += te.iter().enumerate().filter(|(k, &i)| d[*k] * y[i] > 0.0).count();
            previous = Some(m);
        }
    }
    let mut best = (f64::NAN, -1.0);
    for (g, c) in grid(search, mean_sq).enumerate() {
        let acc = correct[g] as f64 / n as f64;
        if acc > best.1 {
            best = (c, acc);
        }
    }
    best
}

/// The absolute C values of the search, ascending.
fn grid(search: &CSearch, mean_sq: f64) -> impl Iterator<Item = f64> + '_ {
    let mut rel = search.relative_grid.clone();
    rel.sort_by(f64::total_cmp);
    rel.into_iter().map(move |r| r / mean_sq.max(f64::MIN_POSITIVE))
}
