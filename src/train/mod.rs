//! Training: Caffe's SGD solver, the seeded training stream, the
//! fine-tuning loop with checkpoints and resume.

pub mod bench;
pub mod checkpoint;
pub mod profile;
pub mod fit;
pub mod solver;
pub mod stream;

pub use fit::{fit, FitConfig};
pub use solver::SolverSettings;
