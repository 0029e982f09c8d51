//! Newton's method (Hessian-free, preconditioned conjugate gradients) for
//! L2-regularised logistic regression and squared-hinge
//! linear SVM on embedded features (≤ n+1 unknowns: exact in a few steps).

use nalgebra::{DMatrix, DVector};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classifier {
    /// scikit-learn `LinearSVC(C)`: ½‖w̃‖² + C Σ max(0, 1 − y w̃·[z, 1])²
    /// (the intercept is the weight of a constant feature 1, penalised).
    Svm,
    /// scikit-learn `LogisticRegression(C)`: ½‖w‖² + C Σ log(1 + e^{−y(w·z + b)})
    /// (the intercept b is not penalised). For two classes, the softmax classifier.
    Softmax,
}

impl Classifier {
    pub fn name(self) -> &'static str {
        match self {
            Classifier::Svm => "svm",
            Classifier::Softmax => "softmax",
        }
    }
}

/// w·z + b > 0 means positive.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    pub w: DVector<f64>,
    pub b: f64,
}

impl LinearModel {
    pub fn decision(&self, z: &DMatrix<f64>) -> DVector<f64> {
        (z * &self.w).add_scalar(self.b)
    }
}

/// Fits on rows `z` with labels `y` ∈ {−1, +1}.
pub fn fit(kind: Classifier, z: &DMatrix<f64>, y: &[f64], c: f64) -> LinearModel {
    fit_from(kind, z, y, c, None)
}

/// [`fit`] starting from another solution (e.g. the previous C of a grid):
/// the optimum is the same, found in fewer Newton steps.
pub fn fit_from(kind: Classifier, z: &DMatrix<f64>, y: &[f64], c: f64, start: Option<&LinearModel>) -> LinearModel {
    let (n, d) = z.shape();
    // Unknowns: w (d) then b.
    let mut theta = DVector::<f64>::zeros(d + 1);
    if let Some(m) = start.filter(|m| m.w.len() == d) {
        theta.rows_mut(0, d).copy_from(&m.w);
        theta[d] = m.b;
    }
    let design = {
        let mut a = DMatrix::<f64>::zeros(n, d + 1);
        a.view_mut((0, 0), (n, d)).copy_from(z);
        a.column_mut(d).fill(1.0);
        a
    };
    let penalised = |i: usize| i < d || kind == Classifier::Svm;
    let objective = |t: &DVector<f64>| -> f64 {
        let m = &design * t;
        let reg: f64 = (0..=d).filter(|&i| penalised(i)).map(|i| t[i] * t[i]).sum::<f64>() * 0.5;
        let loss: f64 = (0..n)
            .map(|i| {
                let margin = y[i] * m[i];
                match kind {
                    Classifier::Softmax => softplus(-margin),
                    Classifier::Svm => (1.0 - margin).max(0.0).powi(2),
                }
            })
            .sum();
        reg + c * loss
    };
    let mut f = objective(&theta);
    let mut first_gradient: Option<f64> = None;
    for _ in 0..100 {
        let m = &design * &theta;
        // Per-sample first and second derivatives of the loss w.r.t. the decision value.
        let mut g1 = DVector::<f64>::zeros(n);
        let mut g2 = DVector::<f64>::zeros(n);
        for i in 0..n {
            let margin = y[i] * m[i];
            match kind {
                Classifier::Softmax => {
                    let p = sigmoid(-margin);
                    g1[i] = -y[i] * p;
                    g2[i] = p * (1.0 - p);
                }
                Classifier::Svm => {
                    if margin < 1.0 {
                        g1[i] = -2.0 * y[i] * (1.0 - margin);
                        g2[i] = 2.0;
                    }
                }
            }
        }
        let mut grad = design.tr_mul(&g1) * c;
        for i in (0..=d).filter(|&i| penalised(i)) {
            grad[i] += theta[i];
        }
        // H = P + C Aᵀ diag(g2) A (P: 1 on penalised coordinates; a tiny
        // ridge on a free intercept keeps H definite on separable data).
        let ridge = |i: usize| if penalised(i) { 1.0 } else { 1e-12 };
        let hess_times = |v: &DVector<f64>| -> DVector<f64> {
            let av = (&design * v).component_mul(&g2);
            let mut out = design.tr_mul(&av) * c;
            for i in 0..=d {
                out[i] += ridge(i) * v[i];
            }
            out
        };
        // Its diagonal: in the embedded coordinates AᵀA is nearly diagonal
        // (exactly, for the training images' own embedding), so this
        // preconditioner leaves conjugate gradients only a few steps.
        let diagonal = DVector::from_fn(d + 1, |j, _| ridge(j) + c * (0..n).map(|i| g2[i] * design[(i, j)] * design[(i, j)]).sum::<f64>());
        let g_norm = grad.norm();
        let first = *first_gradient.get_or_insert(g_norm);
        // Inexact Newton: the step's accuracy follows the gradient's progress
        // (forcing term ‖g‖/‖g₀‖, capped at 0.1), superlinear near the optimum.
        let step = conjugate_gradients(hess_times, &grad, &diagonal, (g_norm / first.max(f64::MIN_POSITIVE)).min(0.1).max(1e-12));
        // Newton decrement: the predicted decrease of f. Below 1e-12 of f
        // the solution is exact to double precision (a gradient-norm test
        // cannot get there when C, and so f, is large).
        if grad.dot(&step) <= 1e-12 * (1.0 + f.abs()) {
            break;
        }
        // Backtracking line search on the (convex) objective.
        let mut t = 1.0;
        let mut improved = false;
        for _ in 0..50 {
            let cand = &theta - &step * t;
            let fc = objective(&cand);
            if fc <= f - 1e-4 * t * grad.dot(&step) {
                theta = cand;
                f = fc;
                improved = true;
                break;
            }
            t *= 0.5;
        }
        if !improved {
            break;
        }
    }
    LinearModel { w: theta.rows(0, d).into_owned(), b: theta[d] }
}

/// Solves H x = b for symmetric positive definite H given as a product,
/// with a diagonal preconditioner, to a relative residual of `tolerance`. Written
/// by hand: Hessian-free Newton (as liblinear's TRON) replaces forming and
/// factoring H, which cost O(n d²) per step against O(n d) per product here.
fn conjugate_gradients(h: impl Fn(&DVector<f64>) -> DVector<f64>, b: &DVector<f64>, diagonal: &DVector<f64>, tolerance: f64) -> DVector<f64> {
    let mut x = DVector::zeros(b.len());
    let mut r = b.clone();
    let mut z = r.component_div(diagonal);
    let mut p = z.clone();
    let mut rz = r.dot(&z);
    let target = tolerance * b.norm();
    for _ in 0..4 * b.len() {
        if r.norm() <= target {
            break;
        }
        let hp = h(&p);
        let alpha = rz / p.dot(&hp);
        x += &p * alpha;
        r -= &hp * alpha;
        z = r.component_div(diagonal);
        let rz_next = r.dot(&z);
        p = &z + &p * (rz_next / rz);
        rz = rz_next;
    }
    x
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accuracy(m: &LinearModel, z: &DMatrix<f64>, y: &[f64]) -> f64 {
        let d = m.decision(z);
        (0..y.len()).filter(|&i| d[i] * y[i] > 0.0).count() as f64 / y.len() as f64
    }

    #[test]
    fn separable_data_is_separated_by_both() {
        // Two clusters along the first axis.
        let z = DMatrix::from_row_slice(6, 2, &[2.0, 0.1, 3.0, -0.2, 2.5, 0.3, -2.0, 0.2, -3.0, 0.0, -2.2, -0.1]);
        let y = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0];
        for kind in [Classifier::Svm, Classifier::Softmax] {
            let m = fit(kind, &z, &y, 10.0);
            assert_eq!(accuracy(&m, &z, &y), 1.0, "{kind:?}");
            assert!(m.w[0] > 0.0 && m.w[0].abs() > 5.0 * m.w[1].abs(), "{kind:?}: {:?}", m.w);
        }
    }

    #[test]
    fn logistic_optimum_satisfies_stationarity() {
        // Overlapping 1-D data: the optimum satisfies w = C Σ y z σ(−y(wz + b)).
        let z = DMatrix::from_row_slice(4, 1, &[1.0, 1.0, -1.0, -1.0]);
        let y = [1.0, -1.0, -1.0, 1.0];
        let c = 2.0;
        let m = fit(Classifier::Softmax, &z, &y, c);
        let grad: f64 = m.w[0] + c * (0..4).map(|i| -y[i] * z[(i, 0)] * sigmoid(-y[i] * (m.w[0] * z[(i, 0)] + m.b))).sum::<f64>();
        assert!(grad.abs() < 1e-8, "gradient {grad}");
    }

    #[test]
    fn squared_hinge_svm_satisfies_stationarity() {
        let z = DMatrix::from_row_slice(5, 2, &[1.0, 2.0, 2.0, 0.5, -1.0, -1.5, 0.2, -0.1, -0.5, 0.4]);
        let y = [1.0, 1.0, -1.0, 1.0, -1.0];
        let c = 0.7;
        let m = fit(Classifier::Svm, &z, &y, c);
        // ∂/∂w̃: w̃ − 2C Σ_{margin<1} y (1 − margin) [z, 1] = 0
        for k in 0..3 {
            let coef = if k < 2 { m.w[k] } else { m.b };
            let s: f64 = (0..5)
                .map(|i| {
                    let zi = if k < 2 { z[(i, k)] } else { 1.0 };
                    let margin = y[i] * (m.w[0] * z[(i, 0)] + m.w[1] * z[(i, 1)] + m.b);
                    if margin < 1.0 { 2.0 * c * y[i] * (1.0 - margin) * zi } else { 0.0 }
                })
                .sum();
            assert!((coef - s).abs() < 1e-8, "coordinate {k}: {coef} vs {s}");
        }
    }
}
