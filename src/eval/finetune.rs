//! Fine-tuning with a recipe: surgery on a backbone, the head's start, the
//! solver. One place that turns training images into a fine-tuned network,
//! used by cross-validation (per fold and per search point) and by
//! `finetune` (on a whole set).

use super::movement::{movement, LayerMovement};
use super::probe_init::{init_head_from_probe, ProbeInit};
use crate::model::tensor_file;
use crate::model::Weights;
use crate::model::saved::SavedModel;
use crate::model::surgery::{Op, Patient};
use crate::model::Net;
use crate::train::fit::EpochLog;
use crate::train::{fit, FitConfig, HeadInit, Recipe, TrainDir};
use anyhow::{Context, Result};
use burn::prelude::Device;
use image::RgbImage;
use std::path::Path;

pub struct FineTuning<'a> {
    pub backbone: &'a SavedModel,
    /// The recipe's surgery, resolved on the backbone (`Recipe::resolved`).
    pub ops: &'a [Op],
    pub recipe: &'a Recipe,
    pub eval_batch: usize,
    /// Where the network trains (`model::device`).
    pub device: &'a Device,
}

pub struct Trained {
    pub net: Net,
    pub log: Vec<EpochLog>,
    pub probe_init: Option<ProbeInit>,
    /// `evaluate` of the network before training (measured on a fresh
    /// start, read back on a resumed one).
    pub acc_before: Option<f64>,
    /// How far each weight layer moved from where training started.
    pub movement: Vec<LayerMovement>,
    /// Where training started (the new layers as initialised).
    pub start: Weights,
    /// The layers the surgery made.
    pub new_layers: Vec<String>,
}

impl Trained {
    /// The network `alpha` of the way from its start to where training left
    /// it (`Recipe::wise_alpha`), and how far each layer then is from the start.
    pub fn at(&self, alpha: f64) -> Result<(Net, Vec<LayerMovement>)> {
        let trained = self.net.weights();
        // 1 is the trained weights exactly (start + 1·(w − start) rounds).
        let weights = if alpha == 1.0 { trained } else { trained.interpolated_from(&self.start, alpha as f32) };
        let net = Net::new(self.net.spec.clone(), &weights, self.net.device())?;
        Ok((net, movement(&self.net.spec, &self.start, &weights, &self.new_layers)))
    }

    /// This network moved back to `alpha` of the way from its start (1 leaves it as it is).
    pub fn interpolated(mut self, alpha: f64) -> Result<Trained> {
        if alpha != 1.0 {
            (self.net, self.movement) = self.at(alpha)?;
        }
        Ok(self)
    }
}

impl FineTuning<'_> {
    /// Operates on the backbone, starts the head, and fine-tunes on the
    /// images, with checkpoints in `dir` (resumed if present). `evaluate` is
    /// called before training and after each epoch.
    pub fn train(&self, name: &str, seed: u64, images: &[&RgbImage], labels: &[usize], dir: &TrainDir, mut evaluate: impl FnMut(&Net) -> Option<f64>) -> Result<Trained> {
        let patient = Patient { new_lr_mult: self.recipe.new_lr_mult, ..Patient::new(self.backbone.spec.clone(), self.backbone.weights.clone()) }.operate(self.ops, seed)?;
        let mut net = Net::new(patient.spec, &patient.weights, self.device)?;
        let pre = &self.backbone.preprocess;
        let resuming = dir.is_resuming();
        let probe_path = dir.probe_init();
        let probe_init = match (self.recipe.head_init, patient.new_layers.last()) {
            (HeadInit::Probe, Some(head)) if !resuming => {
                let p = init_head_from_probe(&mut net, head, pre, images, labels, self.eval_batch)?;
                std::fs::create_dir_all(dir.path())?;
                crate::atomic_write::write(&probe_path, serde_json::to_string_pretty(&p)?)?;
                Some(p)
            }
            (HeadInit::Probe, Some(_)) => serde_json::from_str(&std::fs::read_to_string(&probe_path)?).ok(),
            // Nothing new to start (a raw ablation keeps only pretrained layers).
            (HeadInit::Probe, None) => None,
            (HeadInit::Random, _) => None,
        };
        // Kept in the run directory: a fold resumed from a checkpoint cannot
        // measure it again, and its table row should still show it.
        let before_path = dir.accuracy_before();
        let acc_before = if resuming {
            std::fs::read_to_string(&before_path).ok().and_then(|t| serde_json::from_str(&t).ok())
        } else {
            let a = evaluate(&net);
            if let Some(a) = a {
                std::fs::create_dir_all(dir.path())?;
                crate::atomic_write::write(&before_path, serde_json::to_string(&a)?)?;
                let how = probe_init.as_ref().map(|p| format!(" (head from a probe on {}, C = {:.3e})", p.layer, p.c)).unwrap_or_default();
                eprintln!("{name}: accuracy before training {a:.3}{how}");
            }
            a
        };
        let start = start_weights(&net, &patient.weights, &patient.new_layers, &dir.start_new_layers(), resuming)?;
        let cfg = FitConfig { settings: &self.recipe.solver, seed, run_dir: dir, name: name.to_string(), stop_after: None, new_layers: &patient.new_layers };
        let log = fit(&mut net, pre, images, labels, &cfg, evaluate)?;
        let movement = movement(&net.spec, &start, &net.weights(), &patient.new_layers);
        Trained { net, log, probe_init, acc_before, movement, start, new_layers: patient.new_layers }.interpolated(self.recipe.wise_alpha)
    }
}

/// Where training starts: the pretrained layers as the surgery left them,
/// the new layers as initialised (by the probe, say). The new layers' start
/// is kept in `path`, since a resumed run cannot initialise them again.
fn start_weights(net: &Net, pretrained: &Weights, new_layers: &[String], path: &Path, resuming: bool) -> Result<Weights> {
    let mut start = pretrained.clone();
    if resuming {
        if let Ok((arrays, _)) = tensor_file::read(path) {
            let new = tensor_file::arrays_to_weights(&arrays, "").map_err(anyhow::Error::msg).with_context(|| format!("reading {}", path.display()))?;
            start.layers.extend(new.layers);
        }
        return Ok(start);
    }
    let now = net.weights();
    let mut new = Weights::default();
    for name in new_layers {
        if let Some(blobs) = now.layers.get(name) {
            new.layers.insert(name.clone(), blobs.clone());
        }
    }
    let mut arrays = tensor_file::Arrays::new();
    tensor_file::weights_to_arrays(&new, "", &mut arrays);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    tensor_file::write(path, &arrays, Default::default()).with_context(|| format!("writing {}", path.display()))?;
    start.layers.extend(new.layers);
    Ok(start)
}
