//! K-fold cross-validation of a fine-tuning recipe: per fold, operate on the
//! backbone, fine-tune on the train part, score the test part with the centre
//! crop and with 10-crop oversampling, save the model. A run directory holds
//! everything; running the same command again resumes it.

use super::metrics::{mean_std, score, Scored};
use super::scoring::{probabilities, Views};
use crate::data::Dataset;
use crate::model::saved::{ModelCard, SavedModel};
use crate::model::surgery::{NetworkSize, Op};
use crate::model::Net;
use crate::preprocess::ImageCache;
use super::movement::{largest_pretrained, LayerMovement};
use super::paired::{paired, PairedSummary};
use super::finetune::{FineTuning, Trained};
use super::run_dir::{FoldDir, RunDir};
use super::search::{SearchKey, SearchRecord};
use crate::train::Recipe;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a run is: written to `RUN/config.json`; a run resumes only with the same config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossvalConfig {
    pub backbone: String,
    /// The ImageNet weights: file name and SHA-256 (`model::weights_id`;
    /// runs made before it recorded the file's path).
    pub weights: String,
    pub dataset: String,
    /// Its keys sit beside the others (`surgery`, `solver`, `seed`, …), as
    /// in every `config.json` written so far; the surgery is recorded as ops.
    #[serde(flatten)]
    pub recipe: Recipe,
    pub folds: Vec<usize>,
    /// Settings chosen per fold by nested search (empty: none searched).
    #[serde(default)]
    pub search: Vec<SearchKey>,
    /// Fraction of each fold's training part held out to score the search.
    #[serde(default = "default_holdout")]
    pub holdout: f64,
    /// Inner folds that score the search instead of one held-out slice (0: the slice).
    #[serde(default, skip_serializing_if = "super::search::is_zero")]
    pub inner_folds: usize,
}

impl CrossvalConfig {
    /// Refuses a selection that cannot run (before hours are spent on the
    /// first fold): a held-out fraction outside (0, 1), one inner fold
    /// (nothing held out), a point of the grid that is not a valid recipe.
    pub fn check_selection(&self) -> anyhow::Result<()> {
        if !(self.holdout > 0.0 && self.holdout < 1.0) {
            anyhow::bail!("holdout {} must be between 0 and 1", self.holdout);
        }
        if self.inner_folds == 1 {
            anyhow::bail!("inner folds 1 holds nothing out: use 2 or more, or 0 for one held-out slice (holdout)");
        }
        for point in super::search::grid(&self.search) {
            super::search::apply(&self.recipe, &point)?;
        }
        Ok(())
    }
}

fn default_holdout() -> f64 {
    super::search::DEFAULT_HOLDOUT
}


#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub acc_center: f64,
    pub acc_oversample: f64,
    pub epochs: f64,
    pub iterations: usize,
    pub train_seconds: f64,
    pub center: Scored,
    pub oversample: Scored,
    /// Training loss of the last epoch.
    pub final_loss: Option<f64>,
    /// The linear probe that initialised the head (with `head_init: probe`).
    pub probe_init: Option<super::probe_init::ProbeInit>,
    /// Centre-crop test accuracy before training (the initialised network).
    pub acc_center_before: Option<f64>,
    /// How far each weight layer moved in training (relative L2 change).
    #[serde(default)]
    pub movement: Vec<LayerMovement>,
    /// The nested search that chose this fold's settings, if any.
    #[serde(default)]
    pub search: Option<SearchRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossvalResults {
    pub config: CrossvalConfig,
    pub folds: Vec<FoldResult>,
    pub mean_center: f64,
    pub std_center: f64,
    pub mean_oversample: f64,
    pub std_oversample: f64,
    /// How the spread is computed.
    pub std_kind: String,
    /// Folds whose answers were degenerate (their accuracy means nothing).
    pub degenerate_folds: Vec<usize>,
    /// Folds where training changed the centre-crop test accuracy by at most
    /// one image: there the network did not move, and the run is its
    /// starting point (a linear probe, with a probe-initialised head), not a
    /// fine-tuned network.
    #[serde(default)]
    pub unmoved_folds: Vec<usize>,
    /// Folds where training changed the centre-crop test accuracy by at most
    /// one image, whether or not the weights moved: there the run has not
    /// shown what fine-tuning adds.
    #[serde(default)]
    pub unchanged_folds: Vec<usize>,
    /// Fine-tuned minus starting centre-crop test accuracy, paired by fold.
    #[serde(default)]
    pub paired_center: Option<PairedSummary>,
    /// What the run shows, in words: whether it may be called fine-tuning
    /// (derived from the fold flags above; the Markdown table's title says the same).
    #[serde(default)]
    pub verdict: String,
    /// The size of the network trained (absent in runs written before it was recorded).
    #[serde(default)]
    pub network: Option<NetworkSize>,
}

impl CrossvalResults {
    /// Recomputes what the folds imply (degenerate and unmoved folds): for a
    /// new run, and for one written before a field existed.
    pub fn derive_flags(&mut self) {
        self.degenerate_folds = self.folds.iter().filter(|r| r.center.degenerate.is_some() || r.oversample.degenerate.is_some()).map(|r| r.fold).collect();
        self.unmoved_folds = self.folds.iter().filter(|r| unmoved(r)).map(|r| r.fold).collect();
        self.unchanged_folds = self.folds.iter().filter(|r| same_answers(r)).map(|r| r.fold).collect();
        let pairs: Option<Vec<(f64, f64)>> = self.folds.iter().map(|r| r.acc_center_before.map(|b| (b, r.acc_center))).collect();
        self.paired_center = pairs.and_then(|p| paired(&p));
        let (n, unmoved, unchanged) = (self.folds.len(), self.unmoved_folds.len(), self.unchanged_folds.len());
        self.verdict = match self.standing() {
            Standing::DidNotMove => format!("not fine-tuned: the network did not move on any of the {n} folds (test accuracy within one image of the start): a linear probe"),
            Standing::MostlyDidNotMove => format!("mostly not fine-tuned: the network did not move on {unmoved} of {n} folds (test accuracy within one image of the start)"),
            Standing::NotShown => format!("not shown to be fine-tuned: test accuracy within one image of the start on {unchanged} of {n} folds"),
            Standing::Moved => {
                let gain = self.paired_center.as_ref().map_or(String::new(), |p| format!("; paired gain {:+.3}, better on {} of {n} folds", p.mean, p.improved));
                format!("the network moved: test accuracy changed by more than one image on {} of {n} folds{gain}", n - unchanged)
            }
        };
    }

    /// What the run may be called, from its unmoved and unchanged folds (the
    /// one rule behind the verdict, the titles of its tables and reports).
    pub fn standing(&self) -> Standing {
        let n = self.folds.len();
        if self.did_not_move() {
            Standing::DidNotMove
        } else if 2 * self.unmoved_folds.len() > n {
            Standing::MostlyDidNotMove
        } else if 2 * self.unchanged_folds.len() > n {
            Standing::NotShown
        } else {
            Standing::Moved
        }
    }

    /// Mean centre-crop test accuracy before training (the start), when every fold recorded it.
    pub fn mean_center_before(&self) -> Option<f64> {
        let before: Option<Vec<f64>> = self.folds.iter().map(|f| f.acc_center_before).collect();
        before.filter(|b| !b.is_empty()).map(|b| b.iter().sum::<f64>() / b.len() as f64)
    }

    /// Whether every fold is unmoved: the run must not be called fine-tuning.
    pub fn did_not_move(&self) -> bool {
        !self.folds.is_empty() && self.unmoved_folds.len() == self.folds.len()
    }
}

/// Whether a run may be called fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Every fold unmoved: a linear probe.
    DidNotMove,
    /// More than half the folds unmoved.
    MostlyDidNotMove,
    /// More than half the folds within one test image of their start (the weights moved on some).
    NotShown,
    /// Fine-tuning: the test accuracy changed on most folds.
    Moved,
}

/// A pretrained layer whose weights changed by less than this (relative L2)
/// did not move.
pub const BARELY_MOVED: f64 = 1e-3;

/// A fold whose test accuracy after training is within one image of before,
/// and (where recorded) whose pretrained layers barely moved.
fn unmoved(r: &FoldResult) -> bool {
    let still = r.movement.is_empty() || largest_pretrained(&r.movement).is_none_or(|c| c < BARELY_MOVED);
    same_answers(r) && still
}

/// A fold whose centre-crop test accuracy after training is within one image of before.
fn same_answers(r: &FoldResult) -> bool {
    r.acc_center_before.is_some_and(|before| (r.acc_center - before).abs() * r.center.images.max(1) as f64 <= 1.0 + 1e-9)
}

pub struct Crossval<'a> {
    pub backbone: &'a SavedModel,
    pub ops: &'a [Op],
    pub dataset: &'a Dataset,
    pub cache: &'a ImageCache,
    pub config: CrossvalConfig,
    pub eval_batch: usize,
    pub device: &'a burn::prelude::Device,
}

impl Crossval<'_> {
    /// Runs every fold not yet done in `out` and gathers the results.
    pub fn run(&self, out: &Path) -> Result<CrossvalResults> {
        let run = self.prepare(out)?;
        let mut results = Vec::new();
        for &k in &self.config.folds {
            results.push(self.run_fold(self.fold(k)?, &run.fold(k))?);
        }
        self.gather(&run, results)
    }

    /// Fold `k` alone (a job of a study run by several workers).
    pub fn run_one_fold(&self, out: &Path, k: usize) -> Result<FoldResult> {
        let run = self.prepare(out)?;
        self.run_fold(self.fold(k)?, &run.fold(k))
    }

    /// Point `j` (from 1) of fold `k`'s nested search alone.
    pub fn run_search_point(&self, out: &Path, k: usize, j: usize) -> Result<super::search::PointScore> {
        let run = self.prepare(out)?;
        super::search::point(self, self.fold(k)?, self.fold_seed(k), &run.fold(k), j)
    }

    /// For each point of the nested search (from 1), the point whose
    /// training serves it (`search::trained_by`); empty: nothing searched.
    pub fn search_trained_by(&self) -> Vec<usize> {
        if self.config.search.is_empty() { Vec::new() } else { super::search::trained_by(&self.config.search) }
    }

    fn fold(&self, k: usize) -> Result<&crate::data::Fold> {
        self.dataset.fold(k).with_context(|| format!("{} has no fold {k}", self.dataset.name))
    }

    /// Fold `k`'s seed: its training, search and held-out slice draw from it.
    fn fold_seed(&self, k: usize) -> u64 {
        self.config.recipe.seed.wrapping_add(k as u64)
    }

    /// Creates the run directory with its config, or checks that the one
    /// there was started with the same settings.
    fn prepare(&self, out: &Path) -> Result<RunDir> {
        let run = RunDir::new(out);
        std::fs::create_dir_all(out)?;
        if let Some(mut old) = run.read_config()? {
            old.weights = crate::model::weights_id::upgraded(&old.weights);
            if old != self.config {
                bail!(
                    "{} was started with other settings:\n  then: {}\n  now:  {}\nuse another run directory, or delete this one to start over",
                    out.display(),
                    serde_json::to_string(&old)?,
                    serde_json::to_string(&self.config)?
                );
            }
        } else {
            crate::atomic_write::write(&run.config(), serde_json::to_string_pretty(&self.config)?)?;
        }
        Ok(run)
    }

    fn gather(&self, run: &RunDir, results: Vec<FoldResult>) -> Result<CrossvalResults> {
        let c: Vec<f64> = results.iter().map(|r| r.acc_center).collect();
        let o: Vec<f64> = results.iter().map(|r| r.acc_oversample).collect();
        let (mean_center, std_center) = mean_std(&c);
        let (mean_oversample, std_oversample) = mean_std(&o);
        let mut all = CrossvalResults {
            config: self.config.clone(),
            folds: results,
            mean_center,
            std_center,
            mean_oversample,
            std_oversample,
            std_kind: "population (ddof 0) over folds".into(),
            degenerate_folds: Vec::new(),
            unmoved_folds: Vec::new(),
            unchanged_folds: Vec::new(),
            verdict: String::new(),
            paired_center: None,
            network: Some(NetworkSize::after(&self.backbone.spec, self.ops)?),
        };
        all.derive_flags();
        run.write_results(&all)?;
        Ok(all)
    }

    /// Fine-tuning with `recipe` (the run's, or a point of its search).
    pub fn fine_tuning<'b>(&'b self, recipe: &'b Recipe) -> FineTuning<'b> {
        FineTuning { backbone: self.backbone, ops: self.ops, recipe, eval_batch: self.eval_batch, device: self.device }
    }

    fn run_fold(&self, fold: &crate::data::Fold, dir: &FoldDir) -> Result<FoldResult> {
        if let Some(done) = dir.read_result()? {
            return Ok(done);
        }
        let name = format!("fold {}", fold.number);
        let seed = self.fold_seed(fold.number);
        let pre = &self.backbone.preprocess;
        let images = |idx: &[usize]| idx.iter().map(|&i| &self.cache.images[i]).collect::<Vec<_>>();
        let labels = |idx: &[usize]| idx.iter().map(|&i| self.dataset.items[i].label.index()).collect::<Vec<_>>();
        let (train_x, train_y) = (images(&fold.train), labels(&fold.train));
        let (test_x, test_y) = (images(&fold.test), labels(&fold.test));
        let (recipe, search) = if self.config.search.is_empty() {
            (self.config.recipe.clone(), None)
        } else {
            let (recipe, record) = super::search::choose(self, fold, seed, dir)?;
            (recipe, Some(record))
        };
        let t0 = std::time::Instant::now();
        let test_accuracy = |net: &Net| score(&probabilities(net, pre, &test_x, Views::Center, self.eval_batch), &test_y).accuracy;
        let Trained { net, log, probe_init, acc_before, movement, .. } = self.fine_tuning(&recipe).train(&name, seed, &train_x, &train_y, &dir.train, |net| Some(test_accuracy(net)))?;
        let acc_center_before = acc_before;
        let train_seconds = log.last().map(|l| l.seconds).unwrap_or(0.0).max(t0.elapsed().as_secs_f64());
        let center_p = probabilities(&net, pre, &test_x, Views::Center, self.eval_batch);
        let oversample_p = probabilities(&net, pre, &test_x, Views::TenCrop, self.eval_batch);
        super::predictions::write(&dir.predictions(), &super::predictions::rows(self.dataset, fold, &center_p, &oversample_p))?;
        let center = score(&center_p, &test_y);
        let oversample = score(&oversample_p, &test_y);
        for (what, s) in [("centre crop", &center), ("10-crop", &oversample)] {
            if let Some(why) = &s.degenerate {
                eprintln!("warning: {name} ({what}) is degenerate: {why}; its accuracy {:.3} means nothing", s.accuracy);
            }
        }
        let model = SavedModel {
            spec: net.spec.clone(),
            weights: net.weights(),
            preprocess: pre.clone(),
            card: ModelCard {
                test_accuracy: Some(center.accuracy),
                trained_positive_share: Some(positive_share(&train_y)),
                ..ModelCard::new(
                    self.config.backbone.clone(),
                    self.config.weights.clone(),
                    format!("{}, fold {} train part ({} images)", self.config.dataset, fold.number, fold.train.len()),
                    recipe.surgery.clone(),
                    serde_json::to_value(&recipe)?,
                )
            },
        };
        model.save(&dir.model())?;
        let result = FoldResult {
            fold: fold.number,
            acc_center: center.accuracy,
            acc_oversample: oversample.accuracy,
            epochs: recipe.solver.epochs,
            iterations: recipe.solver.iterations(fold.train.len()),
            train_seconds,
            center,
            oversample,
            final_loss: log.last().map(|l| l.loss),
            probe_init,
            acc_center_before,
            movement,
            search,
        };
        crate::atomic_write::write(&dir.result(), serde_json::to_string_pretty(&result)?)?;
        dir.train.remove_checkpoint();
        eprintln!("{name}: centre {:.3}, 10-crop {:.3} ({:.0} s)", result.acc_center, result.acc_oversample, train_seconds);
        Ok(result)
    }
}

/// The share of class-1 (positive) labels.
pub fn positive_share(labels: &[usize]) -> f64 {
    labels.iter().filter(|&&y| y == 1).count() as f64 / labels.len().max(1) as f64
}

#[cfg(test)]
mod unmoved_tests {
    use super::*;

    fn results(folds: &[(usize, f64, Option<f64>)]) -> CrossvalResults {
        let scored = serde_json::json!({"accuracy": 0.5, "tied": 0, "predicted_positive": 88, "images": 176, "degenerate": null});
        let config = serde_json::json!({"backbone": "b", "weights": "w", "dataset": "d", "surgery": "", "solver": crate::train::SolverSettings::default(),
            "seed": 0, "folds": folds.iter().map(|f| f.0).collect::<Vec<_>>(), "head_init": "probe", "new_lr_mult": 1.0});
        let folds: Vec<_> = folds
            .iter()
            .map(|&(k, after, before)| serde_json::json!({"fold": k, "acc_center": after, "acc_oversample": after, "epochs": 1.0, "iterations": 1, "train_seconds": 1.0,
                "center": scored, "oversample": scored, "final_loss": 0.7, "probe_init": null, "acc_center_before": before}))
            .collect();
        // A results.json written before `unmoved_folds` existed still reads.
        let mut r: CrossvalResults = serde_json::from_value(serde_json::json!({"config": config, "folds": folds, "mean_center": 0.5, "std_center": 0.0,
            "mean_oversample": 0.5, "std_oversample": 0.0, "std_kind": "population", "degenerate_folds": []}))
        .unwrap();
        r.derive_flags();
        r
    }

    #[test]
    fn a_fold_within_one_test_image_of_its_start_did_not_move() {
        // 176 test images: one image is 1/176 of accuracy.
        let r = results(&[(1, 0.5 + 1.0 / 176.0, Some(0.5)), (2, 0.5 - 2.0 / 176.0, Some(0.5)), (3, 0.5, None), (4, 0.5, Some(0.5))]);
        assert_eq!(r.unmoved_folds, [1, 4]);
        assert!(!r.did_not_move());
        let table = crate::report::tables::crossval_table(&r, "c");
        assert!(table.starts_with("# Fine-tuning") && table.contains("did not move (test accuracy within one image of before training; this run did not record how far the weights moved): [1, 4]"), "{table}");
        let still = results(&[(1, 0.5, Some(0.5)), (2, 0.5 - 1.0 / 176.0, Some(0.5))]);
        assert!(still.did_not_move());
        assert!(crate::report::tables::crossval_table(&still, "c").starts_with("# Not fine-tuned — the network did not move"));
        let mostly = results(&[(1, 0.5, Some(0.5)), (2, 0.5, Some(0.5)), (3, 0.6, Some(0.5))]);
        assert!(crate::report::tables::crossval_table(&mostly, "c").starts_with("# Mostly not fine-tuned — the network did not move on 2 of 3 folds"));
        // results.json says it in words too.
        assert!(still.verdict.starts_with("not fine-tuned: the network did not move on any of the 2 folds"), "{}", still.verdict);
        assert!(mostly.verdict.starts_with("mostly not fine-tuned: the network did not move on 2 of 3 folds"), "{}", mostly.verdict);
        assert!(r.verdict.starts_with("the network moved: test accuracy changed by more than one image on 2 of 4 folds"), "{}", r.verdict);
    }
}

#[cfg(test)]
mod selection_tests {
    use super::*;

    #[test]
    fn a_selection_that_cannot_run_is_refused_before_training() {
        let config = |holdout: f64, inner_folds: usize, search: &str| CrossvalConfig {
            backbone: "tiny".into(),
            weights: "random".into(),
            dataset: "tiny".into(),
            recipe: crate::train::Recipe::default(),
            folds: vec![1],
            search: vec![search.parse().unwrap()],
            holdout,
            inner_folds,
        };
        assert!(config(0.2, 0, "base_lr=0.001,0.01").check_selection().is_ok());
        assert!(config(0.2, 3, "base_lr=0.001,0.01").check_selection().is_ok());
        for (holdout, inner, search, says) in [(0.0, 0, "base_lr=0.01", "between 0 and 1"), (1.0, 0, "base_lr=0.01", "between 0 and 1"), (0.2, 1, "base_lr=0.01", "holds nothing out"), (0.2, 0, "surgery=ft", "not searched")] {
            let e = config(holdout, inner, search).check_selection().unwrap_err();
            assert!(format!("{e:#}").contains(says), "{e:#}");
        }
    }
}
