//! Evaluation: scoring views, metrics, cross-validation.

pub mod crossval;
pub mod metrics;
pub mod scoring;
