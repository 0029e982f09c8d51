//! L2-regularised linear classifiers on features of any width, through the
//! Gram matrix: with n training images, K = X Xᵀ (n × n) holds everything a
//! linear model with its weights in the span of the training features can
//! use. K = U S Uᵀ gives an exact n-dimensional embedding Z = U S^½ (Z Zᵀ = K),
//! and a test image x embeds as S^-½ Uᵀ X x. Training on Z gives the same
//! decision values as training on X — for conv1's 290,400 dimensions as for
//! a pooled 1,000 — at the cost of one n × n eigendecomposition.
//!
//! The classifiers follow scikit-learn's defaults so their answers can be
//! checked against it: `LogisticRegression(C)` (intercept not penalised) and
//! `LinearSVC(C)` (squared hinge, intercept as a penalised constant feature).
//! Both are solved to high precision by Newton's method on ≤ n+1 unknowns.

pub mod embed;
pub mod newton;
pub mod select;

pub use embed::Embedding;
pub use newton::{fit, Classifier, LinearModel};
pub use select::{select_c, CSearch};
