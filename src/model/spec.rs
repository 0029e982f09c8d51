//! The network as data, in Caffe's vocabulary: named layers that read
//! `bottom` blobs and write `top` blobs. CaffeNet, SqueezeNet, any imported
//! prototxt and every surgery variant are values of [`NetSpec`]; one builder
//! (`net.rs`) runs them all.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The most outputs a layer may have (ImageNet heads have 1,000; 2^20 is far
/// beyond any network and keeps one layer's weights under a few GB).
pub const MAX_OUTPUTS: usize = 1 << 20;

/// Learning-rate and weight-decay multipliers of one parameter blob (Caffe's `ParamSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParamMult {
    pub lr_mult: f32,
    pub decay_mult: f32,
}

impl Default for ParamMult {
    fn default() -> Self {
        ParamMult { lr_mult: 1.0, decay_mult: 1.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolMethod {
    Max,
    Ave,
}

/// What a layer computes, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum LayerKind {
    Convolution {
        num_output: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        /// (begin, end) padding per spatial axis; Caffe pads symmetrically,
        /// TensorFlow's "same" may pad one more at the end.
        pad: [(usize, usize); 2],
        dilation: [usize; 2],
        group: usize,
        bias: bool,
    },
    InnerProduct {
        num_output: usize,
        bias: bool,
    },
    /// ReLU, leaky with a negative slope, clipped at `max` (ReLU6) if set.
    ReLU {
        negative_slope: f32,
        max: Option<f32>,
    },
    Pooling {
        method: PoolMethod,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
        /// Pool over the whole spatial extent (kernel = input size).
        global: bool,
        /// Caffe rounds the output size up; most other frameworks down.
        ceil: bool,
    },
    /// Local response normalisation across channels, Caffe's formula:
    /// `y = x / (k + alpha/local_size · Σ x²)^beta` over `local_size` channels.
    Lrn {
        local_size: usize,
        alpha: f32,
        beta: f32,
        k: f32,
    },
    Dropout {
        ratio: f32,
    },
    Concat {
        axis: usize,
    },
    Softmax,
    /// Caffe's BatchNorm with global statistics: blobs mean, variance, and a
    /// scale factor that both are divided by.
    BatchNorm {
        eps: f32,
    },
    /// Per-channel multiply (and add, with `bias`).
    Scale {
        bias: bool,
    },
    /// Element-wise sum of the bottoms, each times its coefficient.
    Eltwise {
        coeffs: Vec<f32>,
    },
    /// Flattens every axis after the batch axis.
    Flatten,
}

impl LayerKind {
    /// Caffe's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerKind::Convolution { .. } => "Convolution",
            LayerKind::InnerProduct { .. } => "InnerProduct",
            LayerKind::ReLU { .. } => "ReLU",
            LayerKind::Pooling { .. } => "Pooling",
            LayerKind::Lrn { .. } => "LRN",
            LayerKind::Dropout { .. } => "Dropout",
            LayerKind::Concat { .. } => "Concat",
            LayerKind::Softmax => "Softmax",
            LayerKind::BatchNorm { .. } => "BatchNorm",
            LayerKind::Scale { .. } => "Scale",
            LayerKind::Eltwise { .. } => "Eltwise",
            LayerKind::Flatten => "Flatten",
        }
    }

    /// Whether the layer's parameters are learned by gradient descent
    /// (BatchNorm's statistics are not).
    pub fn is_learnable(&self) -> bool {
        matches!(self, LayerKind::Convolution { .. } | LayerKind::InnerProduct { .. } | LayerKind::Scale { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    pub name: String,
    pub kind: LayerKind,
    pub bottoms: Vec<String>,
    pub tops: Vec<String>,
    /// Multipliers per parameter blob (weights, bias); missing ones are 1/1.
    #[serde(default)]
    pub params: Vec<ParamMult>,
}

impl LayerSpec {
    pub fn param_mult(&self, blob: usize) -> ParamMult {
        self.params.get(blob).copied().unwrap_or_default()
    }
}

/// The network input: one blob of `channels × height × width` per image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSpec {
    pub blob: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl InputSpec {
    /// `[channels, height, width]`.
    pub fn dims(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    pub name: String,
    pub input: InputSpec,
    pub layers: Vec<LayerSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("layer {layer}: bottom blob {blob:?} is not produced by any earlier layer")]
    UnknownBottom { layer: String, blob: String },
    #[error("layer {layer} ({kind}): {message}")]
    Invalid { layer: String, kind: &'static str, message: String },
    #[error("two layers are named {0:?}")]
    DuplicateLayer(String),
    #[error("no layer named {0:?}")]
    UnknownLayer(String),
}

/// A blob's shape without the batch axis: `[C, H, W]` or `[N]`.
pub type Shape = Vec<usize>;

impl NetSpec {
    pub fn layer(&self, name: &str) -> Option<&LayerSpec> {
        self.layers.iter().find(|l| l.name == name)
    }

    pub fn layer_index(&self, name: &str) -> Result<usize, SpecError> {
        self.layers.iter().position(|l| l.name == name).ok_or_else(|| SpecError::UnknownLayer(name.to_string()))
    }

    /// The blob the network's output is read from: the last layer's top.
    pub fn output_blob(&self) -> &str {
        self.layers.last().map(|l| l.tops[0].as_str()).unwrap_or(&self.input.blob)
    }

    /// The blob a loss reads: the input of a final Softmax, else the output.
    pub fn logits_blob(&self) -> &str {
        match self.layers.last() {
            Some(l) if l.kind == LayerKind::Softmax => &l.bottoms[0],
            _ => self.output_blob(),
        }
    }

    /// Infers every blob's shape (in Caffe's rules) and checks the wiring.
    /// Returns the shapes of the bottoms of each layer (the input each sees)
    /// and of every blob after its last write.
    pub fn infer_shapes(&self) -> Result<Shapes, SpecError> {
        let mut blobs: HashMap<String, Shape> = HashMap::new();
        let input = &self.input;
        blobs.insert(input.blob.clone(), vec![input.channels, input.height, input.width]);
        let mut layer_inputs = Vec::with_capacity(self.layers.len());
        let mut seen = std::collections::HashSet::new();
        for layer in &self.layers {
            if !seen.insert(layer.name.as_str()) {
                return Err(SpecError::DuplicateLayer(layer.name.clone()));
            }
            let ins: Vec<Shape> = layer
                .bottoms
                .iter()
                .map(|b| {
                    blobs.get(b).cloned().ok_or_else(|| SpecError::UnknownBottom { layer: layer.name.clone(), blob: b.clone() })
                })
                .collect::<Result<_, _>>()?;
            let out = output_shape(layer, &ins)?;
            for top in &layer.tops {
                blobs.insert(top.clone(), out.clone());
            }
            layer_inputs.push(ins);
        }
        Ok(Shapes { layer_inputs, blobs })
    }

    /// Shapes of each layer's parameter blobs, in Caffe's order and layout.
    pub fn param_shapes(&self) -> Result<Vec<Vec<Shape>>, SpecError> {
        let shapes = self.infer_shapes()?;
        Ok(self.layers.iter().zip(&shapes.layer_inputs).map(|(l, ins)| param_shapes(l, ins)).collect())
    }

    /// Number of learnable weights (BatchNorm statistics excluded).
    pub fn parameter_count(&self) -> Result<usize, SpecError> {
        let shapes = self.param_shapes()?;
        Ok(self
            .layers
            .iter()
            .zip(shapes)
            .filter(|(l, _)| l.kind.is_learnable())
            .flat_map(|(_, s)| s)
            .map(|s| s.iter().product::<usize>())
            .sum())
    }

    /// Distinct blobs in the order they are first written: the layer outputs a
    /// probe can read (an in-place ReLU's output keeps its bottom's name, so
    /// `conv1` is read after its ReLU, as Caffe's `net.blobs['conv1']` is).
    pub fn blob_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for l in &self.layers {
            for t in &l.tops {
                if !names.contains(t) {
                    names.push(t.clone());
                }
            }
        }
        names
    }
}

impl NetSpec {
    /// The layer outputs every path from the input to the output passes
    /// through, in network order: the "layers" a probe reads by default. For a
    /// chain like CaffeNet that is every blob (conv1, pool1, norm1, … fc8); for
    /// SqueezeNet it is conv1, pool1, each fire's squeeze and concat output,
    /// the pools and conv10 — not the two expand branches inside a fire.
    /// Softmax outputs (probabilities, not features) are left out.
    pub fn trunk_blobs(&self) -> Vec<String> {
        let output = self.output_blob().to_string();
        // Index of the last layer that reads each blob.
        let mut last_read: HashMap<&str, usize> = HashMap::new();
        for (i, l) in self.layers.iter().enumerate() {
            for b in &l.bottoms {
                last_read.insert(b.as_str(), i);
            }
        }
        let mut live: Vec<&str> = vec![self.input.blob.as_str()];
        let mut trunk: Vec<String> = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            for t in &l.tops {
                if !live.contains(&t.as_str()) {
                    live.push(t.as_str());
                }
            }
            // A blob stays live while a later layer reads it (the output always does).
            live.retain(|b| *b == output || last_read.get(b).is_some_and(|&r| r > i));
            let top = l.tops[0].as_str();
            if live == [top] && !matches!(l.kind, LayerKind::Softmax) && !trunk.iter().any(|t| t == top) {
                trunk.push(top.to_string());
            }
        }
        trunk
    }
}

/// Result of [`NetSpec::infer_shapes`].
#[derive(Debug, Clone)]
pub struct Shapes {
    /// For each layer, the shapes of its bottoms.
    pub layer_inputs: Vec<Vec<Shape>>,
    /// Each blob's final shape.
    pub blobs: HashMap<String, Shape>,
}

fn invalid(layer: &LayerSpec, message: impl Into<String>) -> SpecError {
    SpecError::Invalid { layer: layer.name.clone(), kind: layer.kind.type_name(), message: message.into() }
}

fn spatial(layer: &LayerSpec, shape: &Shape) -> Result<(usize, usize, usize), SpecError> {
    match shape[..] {
        [c, h, w] => Ok((c, h, w)),
        _ => Err(invalid(layer, format!("needs a C×H×W input, got {shape:?}"))),
    }
}

fn output_shape(layer: &LayerSpec, ins: &[Shape]) -> Result<Shape, SpecError> {
    let n_bottoms = match layer.kind {
        LayerKind::Concat { .. } | LayerKind::Eltwise { .. } => None,
        _ => Some(1),
    };
    if let Some(n) = n_bottoms {
        if ins.len() != n {
            return Err(invalid(layer, format!("expects {n} bottom, has {}", ins.len())));
        }
    } else if ins.is_empty() {
        return Err(invalid(layer, "has no bottom"));
    }
    if layer.tops.len() != 1 {
        return Err(invalid(layer, format!("expects 1 top, has {}", layer.tops.len())));
    }
    let x = &ins[0];
    Ok(match &layer.kind {
        LayerKind::Convolution { num_output, kernel, stride, pad, dilation, group, .. } => {
            let (c, h, w) = spatial(layer, x)?;
            if *group == 0 || c % group != 0 || num_output % group != 0 {
                return Err(invalid(layer, format!("group {group} must divide input channels {c} and outputs {num_output}")));
            }
            let out = |size: usize, ax: usize| -> Result<usize, SpecError> {
                let extent = dilation[ax] * (kernel[ax] - 1) + 1;
                let padded = size + pad[ax].0 + pad[ax].1;
                if padded < extent || stride[ax] == 0 {
                    return Err(invalid(layer, format!("kernel {} larger than padded input {padded}", kernel[ax])));
                }
                Ok((padded - extent) / stride[ax] + 1)
            };
            vec![*num_output, out(h, 0)?, out(w, 1)?]
        }
        LayerKind::InnerProduct { num_output, .. } => vec![*num_output],
        LayerKind::Pooling { kernel, stride, pad, global, ceil, .. } => {
            let (c, h, w) = spatial(layer, x)?;
            if *global {
                vec![c, 1, 1]
            } else {
                vec![c, pooled_size(layer, h, kernel[0], stride[0], pad[0], *ceil)?, pooled_size(layer, w, kernel[1], stride[1], pad[1], *ceil)?]
            }
        }
        LayerKind::Lrn { local_size, .. } => {
            spatial(layer, x)?;
            if local_size % 2 == 0 {
                return Err(invalid(layer, "local_size must be odd"));
            }
            x.clone()
        }
        LayerKind::Concat { axis } => {
            if *axis != 1 {
                return Err(invalid(layer, "only concatenation along channels (axis 1) is supported"));
            }
            let mut out = x.clone();
            for other in &ins[1..] {
                if other.len() != x.len() || other[1..] != x[1..] {
                    return Err(invalid(layer, format!("cannot concatenate {x:?} and {other:?}")));
                }
                out[0] += other[0];
            }
            out
        }
        LayerKind::Eltwise { coeffs } => {
            if ins.iter().any(|s| s != x) {
                return Err(invalid(layer, format!("bottoms differ in shape: {ins:?}")));
            }
            if !coeffs.is_empty() && coeffs.len() != ins.len() {
                return Err(invalid(layer, "one coefficient per bottom"));
            }
            x.clone()
        }
        LayerKind::Flatten => vec![x.iter().product()],
        LayerKind::ReLU { .. }
        | LayerKind::Dropout { .. }
        | LayerKind::Softmax
        | LayerKind::BatchNorm { .. }
        | LayerKind::Scale { .. } => x.clone(),
    })
}

/// Caffe's pooled size: rounded up (or down), and a last window that would
/// start in the padding is dropped.
pub fn pooled_size(layer: &LayerSpec, size: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Result<usize, SpecError> {
    if size + 2 * pad < kernel || stride == 0 {
        return Err(invalid(layer, format!("kernel {kernel} larger than padded input {}", size + 2 * pad)));
    }
    let span = size + 2 * pad - kernel;
    let mut out = if ceil { span.div_ceil(stride) } else { span / stride } + 1;
    if pad > 0 && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    Ok(out)
}

/// Parameter blob shapes of one layer, given its input shapes.
pub fn param_shapes(layer: &LayerSpec, ins: &[Shape]) -> Vec<Shape> {
    let channels = ins.first().and_then(|s| s.first()).copied().unwrap_or(0);
    match &layer.kind {
        LayerKind::Convolution { num_output, kernel, group, bias, .. } => {
            let mut v = vec![vec![*num_output, channels / group, kernel[0], kernel[1]]];
            if *bias {
                v.push(vec![*num_output]);
            }
            v
        }
        LayerKind::InnerProduct { num_output, bias } => {
            let fan_in: usize = ins[0].iter().product();
            let mut v = vec![vec![*num_output, fan_in]];
            if *bias {
                v.push(vec![*num_output]);
            }
            v
        }
        LayerKind::BatchNorm { .. } => vec![vec![channels], vec![channels], vec![1]],
        LayerKind::Scale { bias } => {
            if *bias {
                vec![vec![channels], vec![channels]]
            } else {
                vec![vec![channels]]
            }
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(k: usize, s: usize, p: usize, ceil: bool) -> LayerSpec {
        LayerSpec {
            name: "pool".into(),
            kind: LayerKind::Pooling { method: PoolMethod::Max, kernel: [k, k], stride: [s, s], pad: [p, p], global: false, ceil },
            bottoms: vec!["x".into()],
            tops: vec!["y".into()],
            params: vec![],
        }
    }

    #[test]
    fn caffe_pooling_rounds_up_and_drops_a_window_in_the_padding() {
        // CaffeNet's pool1: 55 → 27 either way.
        assert_eq!(pooled_size(&pool(3, 2, 0, true), 55, 3, 2, 0, true).unwrap(), 27);
        // SqueezeNet's pool1 on 111: ceil((111−3)/2)+1 = 55, floor too.
        assert_eq!(pooled_size(&pool(3, 2, 0, true), 111, 3, 2, 0, true).unwrap(), 55);
        // 112 differs: ceil gives 56, floor 55.
        assert_eq!(pooled_size(&pool(3, 2, 0, true), 112, 3, 2, 0, true).unwrap(), 56);
        assert_eq!(pooled_size(&pool(3, 2, 0, false), 112, 3, 2, 0, false).unwrap(), 55);
        // kernel 2, stride 2, pad 1 on 4: ceil(4/2)+1 = 3, and window 3 would
        // start at 4 ≥ 4 + 1? no (4 < 5): kept.
        assert_eq!(pooled_size(&pool(2, 2, 1, true), 4, 2, 2, 1, true).unwrap(), 3);
        // kernel 3, stride 2, pad 1 on 5: ceil(4/2)+1 = 3; last window starts at 4 < 6: kept.
        // kernel 1, stride 2, pad 1 on 4: ceil(5/2)+1 = 4; (4−1)·2 = 6 ≥ 4 + 1: dropped → 3.
        assert_eq!(pooled_size(&pool(1, 2, 1, true), 4, 1, 2, 1, true).unwrap(), 3);
    }
}
