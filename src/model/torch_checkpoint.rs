//! Reading PyTorch `torch.save` state dicts of float tensors (`.pth`) with
//! `pytorch-reader`, the reader behind burn-store: it reads the legacy
//! (pre-1.6) pickle stream EfficientNet-Lite0's checkpoint uses, and gathers
//! each tensor through its saved strides, so a view over storage in another
//! order (TensorFlow's (kh, kw, in, out) under a PyTorch (out, in, kh, kw)
//! shape) comes out in its shape's row-major order.

use pytorch_reader::{DType, PytorchReader};
use std::collections::HashMap;
use std::path::Path;

/// One tensor of the state dict, contiguous in its shape's (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct TorchError {
    pub file: String,
    pub message: String,
}

/// Every float tensor of the checkpoint at `path`, by name. Integer and
/// boolean tensors (BatchNorm's `num_batches_tracked`) are not weights and
/// are left out; weights in another float type are an error.
pub fn read_state_dict(path: &Path) -> Result<HashMap<String, TorchTensor>, TorchError> {
    let file = path.display().to_string();
    let fail = |message: String| TorchError { file: file.clone(), message };
    let reader = PytorchReader::new(path).map_err(|e| fail(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, t) in reader.tensors() {
        match t.dtype() {
            DType::F32 => {}
            DType::F64 | DType::F16 | DType::BF16 => return Err(fail(format!("tensor {name} is {:?}; deepsent reads float32 weights", t.dtype()))),
            _ => continue,
        }
        let bytes = t.read().map_err(|e| fail(format!("tensor {name}: {e}")))?;
        let shape = t.shape().to_vec();
        if bytes.len() != shape.iter().product::<usize>() * 4 {
            return Err(fail(format!("tensor {name}: {} bytes for shape {shape:?}", bytes.len())));
        }
        let data = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        tensors.insert(name.clone(), TorchTensor { shape, data });
    }
    Ok(tensors)
}

/// The weights of `spec` from a PyTorch state dict whose parameter prefixes
/// are the spec's layer names (as `zoo/efficientnet-lite0.prototxt`):
/// Convolution / InnerProduct ← `NAME.weight` (+ `NAME.bias`); BatchNorm ←
/// `NAME.running_mean`, `NAME.running_var` (Caffe's third blob, the scale
/// factor, 1); Scale `NAME/scale` ← `NAME.weight`, `NAME.bias`.
pub fn weights_for_spec(mut by_name: HashMap<String, TorchTensor>, spec: &super::NetSpec, file: &str) -> Result<super::Weights, TorchError> {
    use super::{Blob, LayerKind};
    let mut take = |key: String| -> Result<Blob, TorchError> {
        let t = by_name.remove(&key).ok_or_else(|| TorchError { file: file.to_string(), message: format!("no tensor {key} for the network's layer") })?;
        Ok(Blob::new(t.shape, t.data))
    };
    let mut weights = super::Weights::default();
    for layer in &spec.layers {
        let name = &layer.name;
        let blobs = match &layer.kind {
            LayerKind::Convolution { bias, .. } | LayerKind::InnerProduct { bias, .. } => {
                let mut b = vec![take(format!("{name}.weight"))?];
                if *bias {
                    b.push(take(format!("{name}.bias"))?);
                }
                b
            }
            LayerKind::BatchNorm { .. } => vec![take(format!("{name}.running_mean"))?, take(format!("{name}.running_var"))?, Blob::new(vec![1], vec![1.0])],
            LayerKind::Scale { bias } => {
                let base = name.strip_suffix("/scale").unwrap_or(name);
                let mut b = vec![take(format!("{base}.weight"))?];
                if *bias {
                    b.push(take(format!("{base}.bias"))?);
                }
                b
            }
            _ => continue,
        };
        weights.layers.insert(name.clone(), blobs);
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy file made by hand: {"w": tensor (2, 2) over a transposed
    /// storage of 4 floats, "num_batches_tracked": 7}.
    fn tiny_file() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."); // magic
        f.extend(b"\x80\x02M\xe9\x03."); // protocol 1001
        f.extend(b"\x80\x02}q\x00X\x0d\x00\x00\x00little_endianq\x01\x88s."); // system info
        f.extend(b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00wq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04Ntq\x08QK\x00K\x02K\x02\x86q\x09K\x01K\x02\x86q\x0a\x89h\x00)Rq\x0btq\x0cRq\x0dX\x13\x00\x00\x00num_batches_trackedq\x0eK\x07u.");
        f.extend(b"\x80\x02]q\x00X\x01\x00\x00\x000q\x01a.");
        f.extend(4u64.to_le_bytes());
        for v in [1.0f32, 3.0, 2.0, 4.0] {
            f.extend(v.to_le_bytes());
        }
        f
    }

    #[test]
    fn a_hand_made_legacy_file_is_read_through_its_strides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.pth");
        std::fs::write(&path, tiny_file()).unwrap();
        let tensors = read_state_dict(&path).unwrap();
        assert_eq!(tensors.len(), 1, "the integer counter is not a tensor");
        assert_eq!(tensors["w"], TorchTensor { shape: vec![2, 2], data: vec![1.0, 2.0, 3.0, 4.0] });
    }

    #[test]
    fn truncated_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = tiny_file();
        for (name, bytes) in [("cut.pth", &f[..f.len() - 3]), ("short.pth", &f[..40])] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = read_state_dict(&path).unwrap_err().to_string();
            assert!(err.starts_with(&path.display().to_string()), "{err}");
        }
    }
}
