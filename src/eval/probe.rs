//! Layer-by-layer probes (the paper's Table 2): for each fold, the centre-crop
//! activations of every layer feed a linear SVM and a softmax classifier
//! fitted on the fold's training part, with C chosen by an inner
//! cross-validation on that part only, and scored on the fold's test part.
//!
//! Each fold is written to `DIR/foldK.json` when done, so an interrupted
//! probe resumes with the folds still missing.

use super::features::{layer_grams, FeatureOptions, LayerGram};
use super::linear::{fit, select_c, CSearch, Classifier, Embedding};
use super::metrics::mean_std;
use crate::data::{Dataset, Fold};
use crate::model::saved::SavedModel;
use crate::model::Net;
use crate::preprocess::ImageCache;
use anyhow::{Context, Result};
use burn::prelude::Device;
use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What to probe and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeSettings {
    /// Blobs to probe, in network order (empty: every trunk blob, see
    /// [`crate::model::NetSpec::trunk_blobs`]).
    pub layers: Vec<String>,
    pub classifiers: Vec<Classifier>,
    pub search: CSearch,
}

/// One fold's answer for one layer and classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldProbe {
    pub fold: usize,
    pub acc: f64,
    #[serde(rename = "C")]
    pub c: f64,
    /// Inner cross-validation accuracy at that C (training part only).
    pub inner_acc: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerProbe {
    pub layer: String,
    pub classifier: Classifier,
    pub dims: usize,
    pub folds: Vec<FoldProbe>,
    pub mean: f64,
    pub std: f64,
}

/// `probe.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeReport {
    pub model: String,
    /// Where the weights came from (the ImageNet file, or the run's fine-tuning recipe).
    pub source: String,
    pub pretrained: bool,
    pub dataset: String,
    pub settings: ProbeSettings,
    pub std_kind: String,
    pub layers: Vec<LayerProbe>,
    /// Time to fit the classifiers, summed over the folds (features
    /// excluded): read from the fold files, so a resumed run reports the
    /// work it did rather than the seconds it took to read them back.
    pub seconds: f64,
    /// Folds whose probed model did not move in training (from the run's
    /// results): there the "fine-tuned" model is its starting point.
    #[serde(default)]
    pub unmoved_folds: Vec<usize>,
}

/// A finished fold, as saved for resuming.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FoldFile {
    settings: ProbeSettings,
    fold: usize,
    results: Vec<(String, Classifier, usize, FoldProbe)>,
    /// Time to fit this fold's classifiers (features excluded).
    seconds: f64,
}

/// Which network each fold's features come from.
pub enum Models<'a> {
    /// The same (pretrained) model for every fold: features extracted once.
    Shared(&'a SavedModel),
    /// `RUN/foldK/model.safetensors`, the fine-tuned model of each fold.
    PerFold(&'a Path),
}

pub struct Probe<'a> {
    pub dataset: &'a Dataset,
    pub cache: &'a ImageCache,
    pub folds: Vec<usize>,
    pub settings: ProbeSettings,
    /// Images per forward pass and the feature memory budget.
    pub batch: usize,
    pub memory_bytes: usize,
    /// Write features as .npy under this directory (per fold for fine-tuned models).
    pub export: Option<PathBuf>,
    /// Where the networks run (`model::device`).
    pub device: &'a Device,
}

impl Probe<'_> {
    /// Runs every fold not yet in `work` (`work/foldK.json`) and gathers the report.
    pub fn run(&self, models: &Models, model_name: &str, work: &Path) -> Result<ProbeReport> {
        std::fs::create_dir_all(work)?;
        let folds: Vec<&Fold> = self
            .folds
            .iter()
            .map(|&k| self.dataset.fold(k).with_context(|| format!("{} has no fold {k}", self.dataset.name)))
            .collect::<Result<_>>()?;
        let mut done: HashMap<usize, FoldFile> = HashMap::new();
        // Exporting features needs them extracted: then every fold runs again.
        for f in folds.iter().filter(|_| self.export.is_none()) {
            if let Some(file) = self.load_fold(work, f.number)? {
                done.insert(f.number, file);
            }
        }
        let pending: Vec<&Fold> = folds.iter().copied().filter(|f| !done.contains_key(&f.number)).collect();
        match models {
            Models::Shared(model) if !pending.is_empty() => {
                // One extraction over every image the pending folds use.
                let mut images: Vec<usize> = pending.iter().flat_map(|f| f.train.iter().chain(&f.test).copied()).collect();
                images.sort_unstable();
                images.dedup();
                let net = Net::new(model.spec.clone(), &model.weights, self.device)?;
                let grams = self.grams(&net, model, &images, self.export.as_deref())?;
                for f in pending {
                    let file = self.probe_fold(f, &images, &grams)?;
                    self.save_fold(work, &file)?;
                    done.insert(f.number, file);
                }
            }
            Models::PerFold(run) => {
                for f in pending {
                    let path = super::run_dir::RunDir::new(*run).fold(f.number).model();
                    let model = SavedModel::load(&path).with_context(|| format!("fold {}: no fine-tuned model (run crossval first)", f.number))?;
                    let net = Net::new(model.spec.clone(), &model.weights, self.device)?;
                    let images: Vec<usize> = f.train.iter().chain(&f.test).copied().collect();
                    let export = self.export.as_ref().map(|d| d.join(format!("fold{}", f.number)));
                    let grams = self.grams(&net, &model, &images, export.as_deref())?;
                    let file = self.probe_fold(f, &images, &grams)?;
                    self.save_fold(work, &file)?;
                    done.insert(f.number, file);
                }
            }
            Models::Shared(_) => {}
        }
        Ok(self.report(model_name, matches!(models, Models::Shared(_)), &folds, &done))
    }

    /// The blobs to probe, in network order.
    fn layers_of(&self, model: &SavedModel) -> Vec<String> {
        if self.settings.layers.is_empty() {
            return model.spec.trunk_blobs();
        }
        let order = model.spec.blob_names();
        let mut layers = self.settings.layers.clone();
        layers.sort_by_key(|l| order.iter().position(|b| b == l).unwrap_or(usize::MAX));
        layers
    }

    fn grams(&self, net: &Net, model: &SavedModel, images: &[usize], export: Option<&Path>) -> Result<Vec<LayerGram>> {
        let layers = self.layers_of(model);
        if let Some(dir) = export {
            std::fs::create_dir_all(dir)?;
            self.write_index(dir, images)?;
        }
        let stored: Vec<_> = images.iter().map(|&i| &self.cache.images[i]).collect();
        let options = FeatureOptions { batch: self.batch, memory_bytes: self.memory_bytes, export };
        let t0 = std::time::Instant::now();
        let grams = layer_grams(net, &model.preprocess, &stored, &layers, &options)?;
        eprintln!("features of {} layers × {} images as Gram matrices: {:.0} s", layers.len(), images.len(), t0.elapsed().as_secs_f64());
        Ok(grams)
    }

    /// `images.txt` (one name per row of the .npy files) and `labels.npy`.
    fn write_index(&self, dir: &Path, images: &[usize]) -> Result<()> {
        let names: Vec<&str> = images.iter().map(|&i| self.dataset.items[i].name.as_str()).collect();
        std::fs::write(dir.join("images.txt"), names.join("\n") + "\n")?;
        let mut w = super::npy::Writer::<i64>::create(&dir.join("labels.npy"), &[images.len()])?;
        w.write(&images.iter().map(|&i| self.dataset.items[i].label.index() as i64).collect::<Vec<_>>())?;
        w.finish()?;
        Ok(())
    }

    /// Fits and scores every (layer, classifier) of one fold; `images` maps
    /// the Gram matrices' rows to dataset items.
    fn probe_fold(&self, fold: &Fold, images: &[usize], grams: &[LayerGram]) -> Result<FoldFile> {
        let row_of: HashMap<usize, usize> = images.iter().enumerate().map(|(r, &i)| (i, r)).collect();
        let rows = |idx: &[usize]| idx.iter().map(|i| row_of[i]).collect::<Vec<_>>();
        let (train, test) = (rows(&fold.train), rows(&fold.test));
        let sign = |idx: &[usize]| idx.iter().map(|&i| if self.dataset.items[i].label.index() == 1 { 1.0 } else { -1.0 }).collect::<Vec<f64>>();
        let (y_train, y_test) = (sign(&fold.train), sign(&fold.test));
        let fitting = std::time::Instant::now();
        let bar = crate::progress::bar((grams.len() * self.settings.classifiers.len()) as u64, &format!("fold {} classifiers", fold.number));
        // Layers in parallel: each is an independent eigendecomposition and Newton fits.
        let results: Vec<Vec<(String, Classifier, usize, FoldProbe)>> = grams
            .par_iter()
            .map(|g| {
                probe_layer(&g.gram, &train, &test, &y_train, &self.settings.classifiers, &self.settings.search)
                    .into_iter()
                    .map(|p| {
                        bar.inc(1);
                        let acc = accuracy(&p.decision, &y_test);
                        (g.blob.clone(), p.kind, g.dims, FoldProbe { fold: fold.number, acc, c: p.c, inner_acc: p.inner_acc })
                    })
                    .collect()
            })
            .collect();
        bar.finish_and_clear();
        eprintln!("fold {}: {} classifiers fitted in {:.0} s", fold.number, grams.len() * self.settings.classifiers.len(), fitting.elapsed().as_secs_f64());
        let results: Vec<_> = results.into_iter().flatten().collect();
        Ok(FoldFile { settings: self.settings.clone(), fold: fold.number, results, seconds: fitting.elapsed().as_secs_f64() })
    }

    /// Whether fold `fold` is probed in `work` with these settings.
    pub fn fold_done(&self, work: &Path, fold: usize) -> Result<bool> {
        Ok(self.load_fold(work, fold)?.is_some())
    }

    fn load_fold(&self, work: &Path, fold: usize) -> Result<Option<FoldFile>> {
        let path = work.join(format!("fold{fold}.json"));
        if !path.exists() {
            return Ok(None);
        }
        let file: FoldFile = serde_json::from_str(&std::fs::read_to_string(&path)?).with_context(|| format!("reading {}", path.display()))?;
        // Other settings: that fold is probed again.
        Ok((file.settings == self.settings).then_some(file))
    }

    fn save_fold(&self, work: &Path, file: &FoldFile) -> Result<()> {
        let path = work.join(format!("fold{}.json", file.fold));
        Ok(crate::atomic_write::write(&path, serde_json::to_string_pretty(file)?)?)
    }

    fn report(&self, model: &str, pretrained: bool, folds: &[&Fold], done: &HashMap<usize, FoldFile>) -> ProbeReport {
        // Layer order as the first fold lists them (network order).
        let first = &done[&folds[0].number];
        let mut layers: Vec<LayerProbe> = Vec::new();
        for (layer, kind, dims, _) in &first.results {
            let per_fold: Vec<FoldProbe> = folds
                .iter()
                .filter_map(|f| done[&f.number].results.iter().find(|r| &r.0 == layer && r.1 == *kind).map(|r| r.3.clone()))
                .collect();
            let (mean, std) = mean_std(&per_fold.iter().map(|p| p.acc).collect::<Vec<_>>());
            layers.push(LayerProbe { layer: layer.clone(), classifier: *kind, dims: *dims, folds: per_fold, mean, std });
        }
        ProbeReport {
            model: model.to_string(),
            source: String::new(),
            pretrained,
            dataset: self.dataset.name.clone(),
            settings: self.settings.clone(),
            std_kind: "population (ddof 0) over folds".into(),
            layers,
            seconds: folds.iter().map(|f| done[&f.number].seconds).sum(),
            unmoved_folds: Vec::new(),
        }
    }
}

fn accuracy(decision: &[f64], y: &[f64]) -> f64 {
    decision.iter().zip(y).filter(|(d, y)| *d * *y > 0.0).count() as f64 / y.len() as f64
}

/// A probe fitted on one layer of one fold.
#[derive(Debug, Clone)]
pub struct ProbeFit {
    pub kind: Classifier,
    pub c: f64,
    pub inner_acc: f64,
    /// Decision values of the test rows (> 0: positive).
    pub decision: Vec<f64>,
}

/// One layer of one fold from its Gram matrix: the training rows are
/// embedded once, then each classifier gets its C by inner cross-validation
/// on them, is fitted, and scores the test rows. The test rows enter only
/// through the final decision values.
pub fn probe_layer(gram: &DMatrix<f64>, train: &[usize], test: &[usize], y_train: &[f64], kinds: &[Classifier], search: &CSearch) -> Vec<ProbeFit> {
    let embedding = Embedding::new(&gram.select_rows(train).select_columns(train));
    let z_test = embedding.embed(&gram.select_rows(test).select_columns(train));
    kinds
        .iter()
        .map(|&kind| {
            let (c, inner_acc) = select_c(kind, &embedding.train, y_train, search);
            let model = fit(kind, &embedding.train, y_train, c);
            ProbeFit { kind, c, inner_acc, decision: model.decision(&z_test).iter().copied().collect() }
        })
        .collect()
}

/// Probes a crossval run — its ImageNet starting point (`pretrained`) or the
/// fine-tuned model of each fold — and writes `RUN/probe[-pretrained].json`
/// (its tables and plots: `report::write_probe`).
pub fn probe_run(probe: &Probe, run: &Path, config: &super::crossval::CrossvalConfig, backbone: &SavedModel, pretrained: bool) -> Result<ProbeReport> {
    let run_dir = super::run_dir::RunDir::new(run);
    let stem = run_dir.probe_stem(pretrained);
    let models = if pretrained { Models::Shared(backbone) } else { Models::PerFold(run) };
    let mut report = probe.run(&models, &config.backbone, &stem)?;
    report.source = if pretrained {
        format!("ImageNet weights {}", config.weights)
    } else {
        format!("each fold's fine-tuned model (foldK/model.safetensors of the run): surgery {}, head {:?}, base lr {}, {} epochs", config.recipe.surgery, config.recipe.head_init, config.recipe.solver.base_lr, config.recipe.solver.epochs)
    };
    if !pretrained {
        // The run's verdict, when it has finished: which of its models did not move.
        if run_dir.results().exists() {
            let mut results = run_dir.read_results()?;
            results.derive_flags();
            report.unmoved_folds = results.unmoved_folds;
        }
    }
    std::fs::write(stem.with_extension("json"), serde_json::to_string_pretty(&report)?)?;
    Ok(report)
}

