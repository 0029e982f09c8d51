//! Evaluation: scoring views, metrics, cross-validation, layer probes.

pub mod binary_metrics;
pub mod calibration;
pub mod crossval;
pub mod deletion;
pub mod evaluate;
pub mod features;
pub mod finetune;
pub mod linear;
pub mod maps;
pub mod metrics;
pub mod movement;
pub mod npy;
pub mod paired;
pub mod predictions;
pub mod probe;
pub mod probe_init;
pub mod run_dir;
pub mod scoring;
pub mod search;
