//! Evaluation: scoring views, metrics, cross-validation.

pub mod crossval;
pub mod linear;
pub mod metrics;
pub mod probe_init;
pub mod recipe;
pub mod scoring;
