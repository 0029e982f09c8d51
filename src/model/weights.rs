//! Parameter blobs by layer name, as Caffe stores them, and their check
//! against a spec.

use super::spec::{NetSpec, Shape};
use std::collections::BTreeMap;

/// One parameter array in Caffe's layout (conv: out × in/group × kh × kw;
/// inner product: out × in; bias: out).
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub shape: Shape,
    pub data: Vec<f32>,
}

impl Blob {
    pub fn new(shape: Shape, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Blob { shape, data }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The parameters of a network, by layer name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights {
    pub layers: BTreeMap<String, Vec<Blob>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    #[error("layer {layer}: no weights for it in {source_name}")]
    Missing { layer: String, source_name: String },
    #[error("layer {layer}: {source_name} has {found} parameter blob(s), the spec needs {expected}")]
    BlobCount { layer: String, source_name: String, found: usize, expected: usize },
    #[error("layer {layer}: blob {blob} in {source_name} has shape {found:?}, the spec needs {expected:?}")]
    Shape { layer: String, blob: usize, source_name: String, found: Shape, expected: Shape },
    #[error("layer {layer}: blob {blob} in {source_name} holds {value} at element {index} (a corrupt file?): weights must be finite")]
    NotFinite { layer: String, blob: usize, source_name: String, index: usize, value: f32 },
    #[error(transparent)]
    Spec(#[from] super::spec::SpecError),
}

impl Weights {
    /// Checks that every parameterised layer of `spec` has blobs of the right
    /// shape, and brings legacy shapes to the spec's (old caffemodels store an
    /// inner product's weights as 1 × 1 × out × in and biases as 1 × 1 × 1 × out:
    /// same elements, same order). Layers the spec does not have are ignored
    /// (e.g. the old fc8 after a surgery), so one file serves every variant.
    /// A NaN or infinite weight is an error naming its layer: it would turn
    /// every answer into NaN, or into "negative 0.500", without a word.
    pub fn conform(&mut self, spec: &NetSpec, source_name: &str) -> Result<(), WeightsError> {
        let shapes = spec.param_shapes()?;
        for (layer, expected) in spec.layers.iter().zip(shapes) {
            if expected.is_empty() {
                continue;
            }
            let Some(blobs) = self.layers.get_mut(&layer.name) else {
                return Err(WeightsError::Missing { layer: layer.name.clone(), source_name: source_name.into() });
            };
            if blobs.len() != expected.len() {
                return Err(WeightsError::BlobCount {
                    layer: layer.name.clone(),
                    source_name: source_name.into(),
                    found: blobs.len(),
                    expected: expected.len(),
                });
            }
            for (i, (blob, want)) in blobs.iter_mut().zip(expected).enumerate() {
                if blob.shape == want {
                    continue;
                }
                let squeezed: Shape = blob.shape.iter().copied().skip_while(|&d| d == 1).collect();
                let want_squeezed: Shape = want.iter().copied().skip_while(|&d| d == 1).collect();
                if squeezed == want_squeezed && blob.len() == want.iter().product::<usize>() {
                    blob.shape = want;
                } else {
                    return Err(WeightsError::Shape {
                        layer: layer.name.clone(),
                        blob: i,
                        source_name: source_name.into(),
                        found: blob.shape.clone(),
                        expected: want,
                    });
                }
            }
            for (i, blob) in blobs.iter().enumerate() {
                if let Some((index, &value)) = blob.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    return Err(WeightsError::NotFinite { layer: layer.name.clone(), blob: i, source_name: source_name.into(), index, value });
                }
            }
        }
        Ok(())
    }

    /// True when every parameterised layer of `spec` has blobs of exactly
    /// the shapes given (as `spec.param_shapes()` returns them).
    pub fn matches(&self, spec: &NetSpec, shapes: &[Vec<Shape>]) -> bool {
        spec.layers.iter().zip(shapes).all(|(layer, expected)| {
            expected.is_empty()
                || self.layers.get(&layer.name).is_some_and(|blobs| blobs.len() == expected.len() && blobs.iter().zip(expected).all(|(b, s)| &b.shape == s))
        })
    }

    /// Keeps only the layers of `spec` (drops weights a surgery removed).
    pub fn retain_spec(&mut self, spec: &NetSpec) {
        self.layers.retain(|name, _| spec.layer(name).is_some());
    }
}
