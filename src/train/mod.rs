//! Training: Caffe's SGD solver, the seeded training stream, the
//! fine-tuning loop with checkpoints and resume.

pub mod bench;
pub mod checkpoint;
pub mod profile;
pub mod fit;
pub mod recipe;
pub mod solver;
pub mod stream;
pub mod train_dir;

pub use fit::{fit, FitConfig};
pub use recipe::{HeadInit, Recipe, RecipeOverrides};
pub use solver::SolverSettings;
pub use train_dir::TrainDir;
