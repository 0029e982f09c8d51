//! Loading a network to run: an architecture plus a weights file of any
//! supported format, or a saved deepsent model.

use super::caffe::caffemodel;
use super::deep_compression;
use super::saved::{ModelCard, SavedModel};
use super::spec::NetSpec;
use super::weights::Weights;
use super::zoo::Arch;
use crate::preprocess::Preprocess;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Reads a weights file for `spec`, by its kind: `.caffemodel` (Caffe),
/// `.net` (SqueezeNet's Deep Compression), `.pth` (a legacy PyTorch state
/// dict named after the spec's layers) or `.safetensors` (deepsent).
pub fn read_weights(path: &Path, spec: &NetSpec) -> Result<Weights> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let mut weights = match ext.as_str() {
        "caffemodel" => caffemodel::read(path)?,
        "net" => deep_compression::read(path, spec)?,
        "safetensors" => SavedModel::load(path)?.weights,
        "pth" => super::torch_checkpoint::weights_for_spec(super::torch_checkpoint::read_state_dict(path)?, spec, &path.display().to_string())?,
        _ => bail!("{}: unknown weights format (expected .caffemodel, .net, .pth or .safetensors)", path.display()),
    };
    weights.conform(spec, &path.display().to_string())?;
    weights.retain_spec(spec);
    Ok(weights)
}

/// An architecture with weights: from `--arch` + `--weights`, or a saved
/// model (whose spec and transform travel with it).
pub fn load_model(arch: Option<&Arch>, weights: &Path) -> Result<SavedModel> {
    let is_saved = weights.extension().is_some_and(|e| e == "safetensors");
    if is_saved && arch.is_none() {
        return Ok(SavedModel::load(weights)?);
    }
    let Some(arch) = arch else {
        bail!("{}: name its architecture (caffenet, squeezenet1.0, efficientnet-lite0 or a .prototxt) for this weights file", weights.display());
    };
    let spec = arch.spec()?;
    let preprocess: Preprocess = arch.preprocess(&spec);
    preprocess.check(spec.input.dims()).map_err(|e| anyhow::anyhow!("{}: {e}", arch.name()))?;
    let w = read_weights(weights, &spec).with_context(|| format!("loading {} weights", arch.name()))?;
    Ok(SavedModel {
        card: ModelCard { backbone: arch.name(), pretrained_from: weights.display().to_string(), ..Default::default() },
        spec,
        weights: w,
        preprocess,
    })
}
