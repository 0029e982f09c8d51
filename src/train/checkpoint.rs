//! Training checkpoints: parameters, momentum buffers and the iteration, in
//! one file written atomically. The random streams are derived from the seed
//! and the position (see `stream.rs`), so no RNG state needs saving.

use crate::model::net::{Net, Params};
use crate::model::tensor_file::{self, Arrays};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;

pub struct Checkpoint {
    pub iteration: usize,
    /// Losses of the iterations of the unfinished epoch (for its log line).
    pub epoch_losses: Vec<f64>,
    pub params: Params,
    pub history: Params,
    /// The running weight average (SWA) and how many snapshots it holds.
    pub swa: Option<(Params, usize)>,
}

pub fn save(path: &Path, net: &Net, history: &Params, swa: Option<&(Params, usize)>, iteration: usize, epoch_losses: &[f64]) -> Result<()> {
    let mut arrays = Arrays::new();
    tensor_file::weights_to_arrays(&net.params_as_weights(&net.params), "w/", &mut arrays);
    tensor_file::weights_to_arrays(&net.params_as_weights(history), "h/", &mut arrays);
    let mut meta = HashMap::new();
    if let Some((mean, count)) = swa {
        tensor_file::weights_to_arrays(&net.params_as_weights(mean), "s/", &mut arrays);
        meta.insert("swa_count".to_string(), count.to_string());
    }
    meta.insert("iteration".to_string(), iteration.to_string());
    meta.insert("epoch_losses".to_string(), serde_json::to_string(epoch_losses)?);
    tensor_file::write(path, &arrays, meta).with_context(|| format!("writing checkpoint {}", path.display()))
}

/// Loads a checkpoint for `net` (whose spec it must match).
pub fn load(path: &Path, net: &Net) -> Result<Checkpoint> {
    let (arrays, meta) = tensor_file::read(path)?;
    let iteration = meta.get("iteration").and_then(|s| s.parse().ok()).with_context(|| format!("{}: no iteration in checkpoint", path.display()))?;
    let to_params = |prefix: &str| -> Result<Params> {
        let w = tensor_file::arrays_to_weights(&arrays, prefix).map_err(anyhow::Error::msg)?;
        net.weights_as_params(&w).with_context(|| format!("{}: checkpoint does not fit this network", path.display()))
    };
    let epoch_losses = match meta.get("epoch_losses") {
        Some(s) => serde_json::from_str(s).with_context(|| format!("{}: bad epoch_losses", path.display()))?,
        None => Vec::new(),
    };
    let swa = match meta.get("swa_count") {
        Some(k) => Some((to_params("s/")?, k.parse().with_context(|| format!("{}: bad swa_count", path.display()))?)),
        None => None,
    };
    Ok(Checkpoint { iteration, epoch_losses, params: to_params("w/")?, history: to_params("h/")?, swa })
}
