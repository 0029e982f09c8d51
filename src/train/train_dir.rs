//! The files of a directory where one network trains: a fold of a
//! cross-validation run, a point of its search, or `finetune`'s `OUT.run`.
//! Named here and nowhere else.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct TrainDir {
    pub path: PathBuf,
}

impl TrainDir {
    pub fn new(path: impl Into<PathBuf>) -> TrainDir {
        TrainDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The solver state, written as training goes, removed when it is over.
    pub fn checkpoint(&self) -> PathBuf {
        self.path.join("checkpoint.safetensors")
    }

    /// One JSON line per epoch (`fit::EpochLog`).
    pub fn log(&self) -> PathBuf {
        self.path.join("log.jsonl")
    }

    /// The probe that started the new head (`head_init: probe`).
    pub fn probe_init(&self) -> PathBuf {
        self.path.join("probe_init.json")
    }

    /// The accuracy before training, which a resumed run cannot measure again.
    pub fn accuracy_before(&self) -> PathBuf {
        self.path.join("accuracy_before.json")
    }

    /// The new layers as they started, to measure how far they moved.
    pub fn start_new_layers(&self) -> PathBuf {
        self.path.join("start_new_layers.safetensors")
    }

    /// Whether training started here before and can resume.
    pub fn is_resuming(&self) -> bool {
        self.checkpoint().exists()
    }

    /// Training is over and its result saved: the checkpoint is not needed.
    pub fn remove_checkpoint(&self) {
        let _ = std::fs::remove_file(self.checkpoint());
    }
}
