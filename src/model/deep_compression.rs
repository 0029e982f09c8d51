//! SqueezeNet's "Deep Compression" weight file (`compressed_SqueezeNet.net`):
//! pruned, 8-bit codebook-quantised convolution weights. Layout (little
//! endian), per `../shared/models/README.md`:
//!
//! 1. one u32 per Convolution layer, in network order: `nnz`, the number of
//!    stored weights;
//! 2. per Convolution layer: a 256-entry f32 codebook; `num_output` f32
//!    biases; `nnz` u8 codes; ⌊(nnz−1)/2⌋+1 bytes of 4-bit position deltas,
//!    low nibble first. Stored weight k sits at flat index
//!    (Σ_{j≤k} (delta_j + 1)) − 1; every other weight is codebook\[0\].
//!
//! No crate reads this format; it is a few dozen lines.

use super::spec::{LayerKind, NetSpec};
use super::weights::{Blob, Weights};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DeepCompressionError {
    #[error("{file}: cannot read: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: truncated in layer {layer}: needs {needed} more bytes at byte {offset}")]
    Truncated { file: String, layer: String, offset: usize, needed: usize },
    #[error("{file}: layer {layer}: stored weight {index} lands at position {position}, past the {len} weights of the layer")]
    OutOfRange { file: String, layer: String, index: usize, position: usize, len: usize },
    #[error("{file}: {extra} bytes left after the last layer: the file does not match this network")]
    TrailingBytes { file: String, extra: usize },
    #[error(transparent)]
    Spec(#[from] super::spec::SpecError),
}

/// Decodes the file for `spec`, whose Convolution layers (in order) it holds.
pub fn read(path: &Path, spec: &NetSpec) -> Result<Weights, DeepCompressionError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| DeepCompressionError::Io { file: file.clone(), source })?;
    decode(&bytes, spec, &file)
}

pub fn decode(bytes: &[u8], spec: &NetSpec, file: &str) -> Result<Weights, DeepCompressionError> {
    let shapes = spec.param_shapes()?;
    let convs: Vec<(&str, &Vec<Vec<usize>>)> = spec
        .layers
        .iter()
        .zip(&shapes)
        .filter(|(l, _)| matches!(l.kind, LayerKind::Convolution { .. }))
        .map(|(l, s)| (l.name.as_str(), s))
        .collect();
    let mut offset = 0usize;
    let mut take = |n: usize, layer: &str| -> Result<&[u8], DeepCompressionError> {
        if offset + n > bytes.len() {
            return Err(DeepCompressionError::Truncated { file: file.into(), layer: layer.into(), offset, needed: offset + n - bytes.len() });
        }
        let s = &bytes[offset..offset + n];
        offset += n;
        Ok(s)
    };
    let header = take(4 * convs.len(), "(header)")?;
    let nnz: Vec<usize> = header.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as usize).collect();
    let f32s = |b: &[u8]| -> Vec<f32> { b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect() };

    let mut weights = Weights::default();
    for ((name, shapes), &n) in convs.iter().zip(&nnz) {
        let weight_shape = shapes[0].clone();
        let len: usize = weight_shape.iter().product();
        let outputs = weight_shape[0];
        let codebook = f32s(take(256 * 4, name)?);
        let bias = f32s(take(outputs * 4, name)?);
        let codes = take(n, name)?;
        let deltas = take(if n == 0 { 0 } else { (n - 1) / 2 + 1 }, name)?;
        let mut data = vec![codebook[0]; len];
        let mut position = 0usize;
        for (k, &code) in codes.iter().enumerate() {
            let byte = deltas[k / 2];
            let delta = if k % 2 == 0 { byte & 0x0f } else { byte >> 4 } as usize;
            position += delta + 1;
            let at = position - 1;
            if at >= len {
                return Err(DeepCompressionError::OutOfRange { file: file.into(), layer: name.to_string(), index: k, position: at, len });
            }
            data[at] = codebook[code as usize];
        }
        weights.layers.insert(name.to_string(), vec![Blob::new(weight_shape, data), Blob::new(vec![outputs], bias)]);
    }
    if offset != bytes.len() {
        return Err(DeepCompressionError::TrailingBytes { file: file.into(), extra: bytes.len() - offset });
    }
    Ok(weights)
}
