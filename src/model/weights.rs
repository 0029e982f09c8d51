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
    /// The point `alpha` of the way from `start` to `self`: start + α·(self − start),
    /// blob by blob (a layer `start` lacks is kept as it is). With α in
    /// (0, 1) this is weight-space ensembling of a fine-tuned network with its
    /// start (WiSE-FT, Wortsman et al. 2022).
    pub fn interpolated_from(&self, start: &Weights, alpha: f32) -> Weights {
        let layers = self
            .layers
            .iter()
            .map(|(name, blobs)| {
                let blobs = match start.layers.get(name) {
                    Some(from) if from.len() == blobs.len() && from.iter().zip(blobs).all(|(a, b)| a.shape == b.shape) => from
                        .iter()
                        .zip(blobs)
                        .map(|(a, b)| Blob::new(b.shape.clone(), a.data.iter().zip(&b.data).map(|(&u, &v)| u + alpha * (v - u)).collect()))
                        .collect(),
                    _ => blobs.clone(),
                };
                (name.clone(), blobs)
            })
            .collect();
        Weights { layers }
    }

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

#[cfg(test)]
mod interpolation_tests {
    use super::*;

    #[test]
    fn a_point_between_two_networks_by_hand() {
        let w = |a: [f32; 2], b: f32| {
            let mut w = Weights::default();
            w.layers.insert("fc".into(), vec![Blob::new(vec![1, 2], a.to_vec()), Blob::new(vec![1], vec![b])]);
            w
        };
        let (start, end) = (w([1.0, -2.0], 0.0), w([3.0, 2.0], 1.0));
        assert_eq!(end.interpolated_from(&start, 0.25), w([1.5, -1.0], 0.25));
        assert_eq!(end.interpolated_from(&start, 0.0), start);
        // A layer the start lacks (or shaped otherwise) is kept as it ends.
        let mut more = end.clone();
        more.layers.insert("new".into(), vec![Blob::new(vec![1], vec![7.0])]);
        assert_eq!(more.interpolated_from(&start, 0.5).layers["new"][0].data, [7.0]);
    }
}
