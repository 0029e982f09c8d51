//! deepsent's own model file: one safetensors file holding every parameter
//! blob (named `LAYER/INDEX`, Caffe layout, f32) and, in its metadata, the
//! spec, the input transform and the model card as JSON. Lossless: a model
//! saved and loaded gives bit-identical outputs.

use super::spec::NetSpec;
use super::tensor_file;
use super::weights::Weights;
use crate::preprocess::Preprocess;
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
    /// The share of positive images it was trained on (the prior a
    /// `--prior` correction starts from).
    #[serde(default)]
    pub trained_positive_share: Option<f64>,
    /// What it applies to its scores before answering, when calibrated for
    /// another image set (`deepsent evaluate --calibrate` or `--prior`).
    #[serde(default)]
    pub calibration: Option<super::calibration::Calibration>,
    pub created: String,
    pub deepsent_version: String,
}

impl ModelCard {
    /// The card of a model made now by this version of deepsent.
    pub fn new(backbone: String, pretrained_from: String, trained_on: String, surgery: String, settings: serde_json::Value) -> Self {
        ModelCard {
            backbone,
            pretrained_from,
            trained_on,
            surgery,
            settings,
            cv_accuracy: None,
            test_accuracy: None,
            trained_positive_share: None,
            calibration: None,
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            deepsent_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
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
    #[error("{file}: {message}")]
    Format { file: String, message: String },
}

const SPEC_KEY: &str = "deepsent.spec";
const PREPROCESS_KEY: &str = "deepsent.preprocess";
const CARD_KEY: &str = "deepsent.card";

impl SavedModel {
    pub fn save(&self, path: &Path) -> Result<(), SavedError> {
        let json = |v: serde_json::Result<String>| v.expect("plain data serialises");
        let mut metadata = HashMap::new();
        metadata.insert(SPEC_KEY.to_string(), json(serde_json::to_string(&self.spec)));
        metadata.insert(PREPROCESS_KEY.to_string(), json(serde_json::to_string(&self.preprocess)));
        metadata.insert(CARD_KEY.to_string(), json(serde_json::to_string(&self.card)));
        let mut arrays = tensor_file::Arrays::new();
        tensor_file::weights_to_arrays(&self.weights, "", &mut arrays);
        tensor_file::write(path, &arrays, metadata).map_err(SavedError::from)
    }

    pub fn load(path: &Path) -> Result<SavedModel, SavedError> {
        let file = path.display().to_string();
        let fmt_err = |message: String| SavedError::Format { file: file.clone(), message };
        let (arrays, meta) = tensor_file::read(path)?;
        let get = |key: &str| meta.get(key).ok_or_else(|| fmt_err(format!("metadata has no {key}")));
        let spec: NetSpec = serde_json::from_str(get(SPEC_KEY)?).map_err(|e| fmt_err(format!("{SPEC_KEY}: {e}")))?;
        let preprocess: Preprocess = serde_json::from_str(get(PREPROCESS_KEY)?).map_err(|e| fmt_err(format!("{PREPROCESS_KEY}: {e}")))?;
        let card: ModelCard = serde_json::from_str(get(CARD_KEY)?).map_err(|e| fmt_err(format!("{CARD_KEY}: {e}")))?;
        if spec.layers.is_empty() {
            return Err(fmt_err(format!("{SPEC_KEY}: the network has no layers")));
        }
        preprocess.check(spec.input.dims()).map_err(|e| fmt_err(format!("{PREPROCESS_KEY}: {e}")))?;
        let mut weights = tensor_file::arrays_to_weights(&arrays, "").map_err(fmt_err)?;
        weights.conform(&spec, &file).map_err(|e| fmt_err(e.to_string()))?;
        Ok(SavedModel { spec, weights, preprocess, card })
    }
}

impl From<tensor_file::TensorFileError> for SavedError {
    fn from(e: tensor_file::TensorFileError) -> Self {
        match e {
            tensor_file::TensorFileError::Io { file, source } => SavedError::Io { file, source },
            tensor_file::TensorFileError::Format { file, message } => SavedError::Format { file, message: format!("not a deepsent model: {message}") },
        }
    }
}
