//! What every command that trains or probes starts from, prepared once: the
//! backbone with its weights, the dataset with its folds, and its images
//! decoded at the backbone's stored size. Used by `crossval`, `finetune`,
//! `probe` and `reproduce`.

use crate::data::{DataRequest, Dataset};
use crate::eval::crossval::{Crossval, CrossvalConfig};
use crate::eval::search::SearchKey;
use crate::model::saved::SavedModel;
use crate::model::surgery::Op;
use crate::model::{load, Arch};
use crate::preprocess::{ImageCache, DEFAULT_MAX_PIXELS};
use crate::train::Recipe;
use crate::model::weights_id::weights_id;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub struct Workbench {
    pub arch: Arch,
    pub weights: PathBuf,
    /// The weights as runs record them: file name and SHA-256.
    pub weights_id: String,
    pub backbone: SavedModel,
    pub dataset: Dataset,
    /// The dataset as run configs name it: its name and root.
    pub described: String,
    pub cache: ImageCache,
    /// Where every network of the command runs (`model::device`).
    pub device: burn::prelude::Device,
}

impl Workbench {
    pub fn prepare(arch: Arch, weights: PathBuf, request: &DataRequest, device: burn::prelude::Device) -> Result<Workbench> {
        let backbone = load::load_model(Some(&arch), &weights)?;
        let weights_id = weights_id(&weights).with_context(|| format!("reading {}", weights.display()))?;
        let dataset = crate::data::load(request).into_result()?;
        let paths: Vec<PathBuf> = dataset.items.iter().map(|i| i.path.clone()).collect();
        let cache = ImageCache::build(&paths, &backbone.preprocess, DEFAULT_MAX_PIXELS)?;
        let described = crate::data::describe(&dataset, request);
        Ok(Workbench { arch, weights, weights_id, backbone, dataset, described, cache, device })
    }

    /// The numbers of every fold of the dataset.
    pub fn all_folds(&self) -> Vec<usize> {
        self.dataset.folds.iter().map(|f| f.number).collect()
    }

    /// What a cross-validation run of `recipe` (resolved: its surgery as ops) on these folds is.
    pub fn crossval_config(&self, recipe: Recipe, folds: Vec<usize>, search: Vec<SearchKey>, holdout: f64, inner_folds: usize) -> CrossvalConfig {
        CrossvalConfig { backbone: self.arch.name(), weights: self.weights_id.clone(), dataset: self.described.clone(), recipe, folds, search, holdout, inner_folds }
    }

    pub fn crossval<'a>(&'a self, ops: &'a [Op], config: CrossvalConfig, eval_batch: usize) -> Crossval<'a> {
        Crossval { backbone: &self.backbone, ops, dataset: &self.dataset, cache: &self.cache, config, eval_batch, device: &self.device }
    }
}
