//! The layout of a cross-validation run directory, named here and nowhere
//! else, with its typed files:
//!
//! ```text
//! RUN/config.json              what the run is (CrossvalConfig); resume checks it
//! RUN/results.{json,md}        every fold (CrossvalResults) and its table
//! RUN/probe{,-pretrained}.*    probes of the run's models (ProbeReport)
//! RUN/foldK/result.json        the fold's scores (FoldResult), once it is done
//! RUN/foldK/model.safetensors  the fold's fine-tuned model
//! RUN/foldK/predictions.csv    its answer on every test image
//! RUN/foldK/search/pointJ/     a point of the nested search, trained there,
//!                              and its score.json (PointScore)
//! RUN/foldK/…                  the training files of `TrainDir`
//! ```

use super::crossval::{CrossvalConfig, CrossvalResults, FoldResult};
use crate::train::train_dir::TrainDir;
use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("config.json")
    }

    pub fn results(&self) -> PathBuf {
        self.path.join("results.json")
    }

    pub fn results_md(&self) -> PathBuf {
        self.path.join("results.md")
    }

    pub fn fold(&self, k: usize) -> FoldDir {
        FoldDir { train: TrainDir::new(self.path.join(format!("fold{k}"))) }
    }

    /// File stem of the probes of the pretrained model or of the run's own models.
    pub fn probe_stem(&self, pretrained: bool) -> PathBuf {
        self.path.join(if pretrained { "probe-pretrained" } else { "probe" })
    }

    /// The config the run was started with, if it was.
    pub fn read_config(&self) -> Result<Option<CrossvalConfig>> {
        let path = self.config();
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// The results of a finished run.
    pub fn read_results(&self) -> Result<CrossvalResults> {
        read_json(&self.results()).with_context(|| format!("is {} a finished crossval run?", self.path.display()))
    }

    pub fn write_results(&self, results: &CrossvalResults) -> Result<()> {
        Ok(crate::atomic_write::write(&self.results(), serde_json::to_string_pretty(results)?)?)
    }
}

#[derive(Debug, Clone)]
pub struct FoldDir {
    /// The fold's model trains here.
    pub train: TrainDir,
}

impl FoldDir {
    pub fn path(&self) -> &Path {
        self.train.path()
    }

    pub fn result(&self) -> PathBuf {
        self.path().join("result.json")
    }

    pub fn model(&self) -> PathBuf {
        self.path().join("model.safetensors")
    }

    pub fn predictions(&self) -> PathBuf {
        self.path().join("predictions.csv")
    }

    pub fn search(&self) -> PathBuf {
        self.path().join("search")
    }

    /// Where point `j` (from 1) of the fold's search trains.
    pub fn search_point(&self, j: usize) -> TrainDir {
        TrainDir::new(self.search().join(format!("point{j}")))
    }

    /// Where point `j` trains on inner fold `s` (from 1), when the search scores by inner folds.
    pub fn search_split(&self, j: usize, s: usize) -> TrainDir {
        TrainDir::new(self.search_point(j).path().join(format!("split{s}")))
    }

    /// The held-out score of point `j` (`search::PointScore`), once it is trained.
    pub fn search_score(&self, j: usize) -> PathBuf {
        self.search_point(j).path().join("score.json")
    }

    /// The fold's result, if it is done.
    pub fn read_result(&self) -> Result<Option<FoldResult>> {
        let path = self.result();
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }
}

/// A JSON file of a run as its type; errors name the file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
