//! deepsent's own model file: one safetensors file holding every parameter
//! blob (named `LAYER/INDEX`, Caffe layout, f32) and, in its metadata, the
//! spec, the input transform and the model card as JSON. Lossless: a model
//! saved and loaded gives bit-identical outputs.

use super::spec::NetSpec;
use super::weights::{Blob, Weights};
use crate::preprocess::Preprocess;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// What a saved model is: how it was made and how well it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The backbone it started from (e.g. `squeezenet1.0`).
    pub backbone: String,
    /// Where its starting weights came from.
    pub pretrained_from: String,
    /// The data it was trained on (e.g. `twitter/five, fold 1 train part`).
    pub trained_on: String,
    /// Surgery applied to the backbone (e.g. `replace:conv_final:2`).
    pub surgery: String,
    /// Training settings, free-form JSON.
    #[serde(default)]
    pub settings: serde_json::Value,
    /// Cross-validation accuracy of this recipe, if known.
    pub cv_accuracy: Option<f64>,
    /// Test accuracy of this very model on held-out data, if known.
    pub test_accuracy: Option<f64>,
    pub created: String,
    pub deepsent_version: String,
}

/// A model as saved: everything needed to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedModel {
    pub spec: NetSpec,
    pub weights: Weights,
    pub preprocess: Preprocess,
    pub card: ModelCard,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: not a deepsent model: {message}")]
    Format { file: String, message: String },
}

const SPEC_KEY: &str = "deepsent.spec";
const PREPROCESS_KEY: &str = "deepsent.preprocess";
const CARD_KEY: &str = "deepsent.card";

impl SavedModel {
    pub fn save(&self, path: &Path) -> Result<(), SavedError> {
        let file = path.display().to_string();
        let fmt_err = |message: String| SavedError::Format { file: file.clone(), message };
        let mut metadata = HashMap::new();
        metadata.insert(SPEC_KEY.to_string(), serde_json::to_string(&self.spec).map_err(|e| fmt_err(e.to_string()))?);
        metadata.insert(PREPROCESS_KEY.to_string(), serde_json::to_string(&self.preprocess).map_err(|e| fmt_err(e.to_string()))?);
        metadata.insert(CARD_KEY.to_string(), serde_json::to_string(&self.card).map_err(|e| fmt_err(e.to_string()))?);
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .weights
            .layers
            .iter()
            .flat_map(|(name, blobs)| {
                blobs.iter().enumerate().map(move |(i, b)| {
                    (format!("{name}/{i}"), b.data.iter().flat_map(|v| v.to_le_bytes()).collect(), b.shape.clone())
                })
            })
            .collect();
        let views: Vec<(String, TensorView)> = bytes
            .iter()
            .map(|(n, data, shape)| Ok((n.clone(), TensorView::new(Dtype::F32, shape.clone(), data).map_err(|e| fmt_err(e.to_string()))?)))
            .collect::<Result<_, SavedError>>()?;
        let out = safetensors::serialize(views, &Some(metadata)).map_err(|e| fmt_err(e.to_string()))?;
        // Write beside and rename, so an interrupted save never leaves half a model.
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, out).map_err(|source| SavedError::Io { file: file.clone(), source })?;
        std::fs::rename(&tmp, path).map_err(|source| SavedError::Io { file, source })
    }

    pub fn load(path: &Path) -> Result<SavedModel, SavedError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SavedError::Io { file: file.clone(), source })?;
        let fmt_err = |message: String| SavedError::Format { file: file.clone(), message };
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| fmt_err(e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let get = |key: &str| meta.get(key).ok_or_else(|| fmt_err(format!("metadata has no {key}")));
        let spec: NetSpec = serde_json::from_str(get(SPEC_KEY)?).map_err(|e| fmt_err(format!("{SPEC_KEY}: {e}")))?;
        let preprocess: Preprocess = serde_json::from_str(get(PREPROCESS_KEY)?).map_err(|e| fmt_err(format!("{PREPROCESS_KEY}: {e}")))?;
        let card: ModelCard = serde_json::from_str(get(CARD_KEY)?).map_err(|e| fmt_err(format!("{CARD_KEY}: {e}")))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| fmt_err(e.to_string()))?;
        let mut weights = Weights::default();
        let mut names: Vec<(String, usize, String)> = tensors
            .names()
            .into_iter()
            .map(|n| {
                let (layer, idx) = n.rsplit_once('/').ok_or_else(|| fmt_err(format!("tensor name {n:?} is not LAYER/INDEX")))?;
                Ok((layer.to_string(), idx.parse().map_err(|_| fmt_err(format!("tensor name {n:?} is not LAYER/INDEX")))?, n.to_string()))
            })
            .collect::<Result<_, SavedError>>()?;
        names.sort();
        for (layer, _, name) in names {
            let t = tensors.tensor(&name).map_err(|e| fmt_err(e.to_string()))?;
            if t.dtype() != Dtype::F32 {
                return Err(fmt_err(format!("{name} is {:?}, expected F32", t.dtype())));
            }
            let data: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            weights.layers.entry(layer).or_default().push(Blob::new(t.shape().to_vec(), data));
        }
        weights.conform(&spec, &file).map_err(|e| fmt_err(e.to_string()))?;
        Ok(SavedModel { spec, weights, preprocess, card })
    }
}
