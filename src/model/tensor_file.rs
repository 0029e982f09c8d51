//! Named f32 arrays plus string metadata in one safetensors file: the storage
//! under saved models and training checkpoints.

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TensorFileError {
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: {message}")]
    Format { file: String, message: String },
}

/// Arrays by name: (shape, values).
pub type Arrays = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Writes atomically (to a temporary file, then renamed), so an interrupted
/// write never leaves half a file behind.
pub fn write(path: &Path, arrays: &Arrays, metadata: HashMap<String, String>) -> Result<(), TensorFileError> {
    let file = path.display().to_string();
    let fmt_err = |message: String| TensorFileError::Format { file: file.clone(), message };
    let bytes: Vec<(&String, Vec<u8>, &Vec<usize>)> =
        arrays.iter().map(|(n, (shape, data))| (n, data.iter().flat_map(|v| v.to_le_bytes()).collect(), shape)).collect();
    let views = bytes
        .iter()
        .map(|(n, data, shape)| Ok(((*n).clone(), TensorView::new(Dtype::F32, (*shape).clone(), data).map_err(|e| fmt_err(e.to_string()))?)))
        .collect::<Result<Vec<_>, TensorFileError>>()?;
    let out = safetensors::serialize(views, &Some(metadata)).map_err(|e| fmt_err(e.to_string()))?;
    crate::atomic_write::write(path, out).map_err(|source| TensorFileError::Io { file, source })
}

pub fn read(path: &Path) -> Result<(Arrays, HashMap<String, String>), TensorFileError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TensorFileError::Io { file: file.clone(), source })?;
    let fmt_err = |message: String| TensorFileError::Format { file: file.clone(), message };
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| fmt_err(format!("not a safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| fmt_err(e.to_string()))?;
    let mut arrays = Arrays::new();
    for name in tensors.names() {
        let t = tensors.tensor(name).map_err(|e| fmt_err(e.to_string()))?;
        if t.dtype() != Dtype::F32 {
            return Err(fmt_err(format!("{name} is {:?}, expected F32", t.dtype())));
        }
        let data = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        arrays.insert(name.to_string(), (t.shape().to_vec(), data));
    }
    Ok((arrays, metadata))
}

/// Weights as arrays named `PREFIX LAYER/INDEX`.
pub fn weights_to_arrays(w: &super::Weights, prefix: &str, arrays: &mut Arrays) {
    for (name, blobs) in &w.layers {
        for (i, b) in blobs.iter().enumerate() {
            arrays.insert(format!("{prefix}{name}/{i}"), (b.shape.clone(), b.data.clone()));
        }
    }
}

/// The inverse of [`weights_to_arrays`] for one prefix.
pub fn arrays_to_weights(arrays: &Arrays, prefix: &str) -> Result<super::Weights, String> {
    let mut entries: Vec<(String, usize, &(Vec<usize>, Vec<f32>))> = Vec::new();
    for (name, a) in arrays {
        let Some(rest) = name.strip_prefix(prefix) else { continue };
        let (layer, idx) = rest.rsplit_once('/').ok_or_else(|| format!("array name {name:?} is not LAYER/INDEX"))?;
        let idx: usize = idx.parse().map_err(|_| format!("array name {name:?} is not LAYER/INDEX"))?;
        entries.push((layer.to_string(), idx, a));
    }
    entries.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut w = super::Weights::default();
    for (layer, _, (shape, data)) in entries {
        w.layers.entry(layer).or_default().push(super::Blob::new(shape.clone(), data.clone()));
    }
    Ok(w)
}
