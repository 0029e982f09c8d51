//! Network surgery: operations on a spec (and the weights that go with it).
//!
//! - `cut-after:LAYER` drops every layer above LAYER, except the in-place
//!   layers (ReLU, Dropout) that act on LAYER's own output: they are part of
//!   what LAYER hands on. The loss goes on LAYER's output.
//! - `replace:LAYER:N` puts a new layer of LAYER's type with N outputs in its
//!   place (fresh weights, learning rate ×10). Parameter-free layers above it
//!   stay (ReLU, pooling, softmax); learnable layers above it, and all that
//!   depends on them, go.
//! - `append:LAYER:NEW:N` adds a new layer NEW with N outputs reading LAYER's
//!   output (an InnerProduct on a flat blob, a 1×1 Convolution on a map), and
//!   drops what was above LAYER.
//! - `pool-after:LAYER` drops what was above LAYER and averages its output
//!   map globally (`LAYER_pool`): class scores from a map, as SqueezeNet's
//!   own classifier does; with `append` it builds such a head anywhere.
//! - `remove:LAYER` deletes an in-place layer (e.g. the ReLU after a new head).
//! - `freeze-to:LAYER` sets the learning rate of LAYER and every learnable
//!   layer before it to 0: their weights stay as pretrained, and the backward
//!   pass stops there (the early, large feature maps cost most of it).
//!
//! Ops compose left to right, separated by commas.

use super::spec::{LayerKind, LayerSpec, NetSpec, ParamMult};
use super::weights::{Blob, Weights};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Multiplier of a new layer's learning rate (the paper's ×10).
pub const NEW_LAYER_LR_MULT: f32 = 10.0;
/// Standard deviation of a new layer's Gaussian weights (the paper's 0.01).
pub const NEW_LAYER_STD: f32 = 0.01;

/// The size of the network a surgery makes: its parameters, and the layers it added.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkSize {
    pub parameters: usize,
    pub new_layers: Vec<String>,
}

impl NetworkSize {
    /// Of `backbone` after `ops`, from the structure alone (no weights drawn).
    pub fn after(backbone: &NetSpec, ops: &[Op]) -> Result<NetworkSize, SurgeryError> {
        let patient = Patient::structure(backbone.clone())?.operate(ops, 0)?;
        let parameters = patient.spec.parameter_count()?;
        Ok(NetworkSize { parameters, new_layers: patient.new_layers })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CutAfter(String),
    Replace { layer: String, outputs: usize },
    Append { after: String, name: String, outputs: usize },
    PoolAfter(String),
    Remove(String),
    FreezeTo(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SurgeryError {
    #[error("cannot parse surgery {0:?}: use cut-after:LAYER, replace:LAYER:N, append:LAYER:NEW:N, pool-after:LAYER, remove:LAYER or freeze-to:LAYER")]
    Syntax(String),
    #[error("surgery {op}: no layer named {layer:?} (layers: {known})")]
    UnknownLayer { op: String, layer: String, known: String },
    #[error("surgery {op}: {message}")]
    Invalid { op: String, message: String },
    #[error(transparent)]
    Spec(#[from] super::spec::SpecError),
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::CutAfter(l) => write!(f, "cut-after:{l}"),
            Op::Replace { layer, outputs } => write!(f, "replace:{layer}:{outputs}"),
            Op::Append { after, name, outputs } => write!(f, "append:{after}:{name}:{outputs}"),
            Op::PoolAfter(l) => write!(f, "pool-after:{l}"),
            Op::Remove(l) => write!(f, "remove:{l}"),
            Op::FreezeTo(l) => write!(f, "freeze-to:{l}"),
        }
    }
}

/// Parses `op,op,…`.
/// Ops as `--surgery` text (the inverse of [`parse_ops`]), as run configs record them.
pub fn ops_text(ops: &[Op]) -> String {
    ops.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(",")
}

pub fn parse_ops(text: &str) -> Result<Vec<Op>, SurgeryError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let parts: Vec<&str> = s.split(':').collect();
            // Bounded like a prototxt's num_output: no blob is sized from an absurd count.
            let max = super::spec::MAX_OUTPUTS;
            let num = |p: &str| match p.parse::<u64>() {
                Ok(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
                Ok(n) => Err(SurgeryError::Invalid { op: s.into(), message: format!("{n} outputs: give between 1 and {max}") }),
                Err(_) => Err(SurgeryError::Syntax(s.into())),
            };
            Ok(match parts[..] {
                ["cut-after", l] => Op::CutAfter(l.into()),
                ["replace", l, n] => Op::Replace { layer: l.into(), outputs: num(n)? },
                ["append", l, new, n] => Op::Append { after: l.into(), name: new.into(), outputs: num(n)? },
                ["pool-after", l] => Op::PoolAfter(l.into()),
                ["remove", l] => Op::Remove(l.into()),
                ["freeze-to", l] => Op::FreezeTo(l.into()),
                _ => return Err(SurgeryError::Syntax(s.into())),
            })
        })
        .collect()
}

/// A spec with its weights, operated on together.
#[derive(Debug, Clone)]
pub struct Patient {
    pub spec: NetSpec,
    pub weights: Weights,
    /// Names of the layers the ops created (fresh weights).
    pub new_layers: Vec<String>,
    /// Learning-rate multiplier of new layers (the paper's ×10).
    pub new_lr_mult: f32,
}

impl Patient {
    pub fn new(spec: NetSpec, weights: Weights) -> Self {
        Patient { spec, weights, new_layers: Vec::new(), new_lr_mult: NEW_LAYER_LR_MULT }
    }

    /// A patient with zero weights: enough to see what a surgery makes
    /// (layers, parameter count) without loading any weights.
    pub fn structure(spec: NetSpec) -> Result<Patient, SurgeryError> {
        let mut weights = Weights::default();
        for (l, shapes) in spec.layers.iter().zip(spec.param_shapes()?) {
            if !shapes.is_empty() {
                weights.layers.insert(l.name.clone(), shapes.into_iter().map(|s| Blob::new(s.clone(), vec![0.0; s.iter().product()])).collect());
            }
        }
        Ok(Patient::new(spec, weights))
    }
}

impl Patient {
    /// Applies ops in order; new layers draw their weights from `seed`.
    pub fn operate(mut self, ops: &[Op], seed: u64) -> Result<Patient, SurgeryError> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for op in ops {
            self.apply(op, &mut rng)?;
        }
        self.spec.infer_shapes()?;
        self.weights.retain_spec(&self.spec);
        Ok(self)
    }

    fn index(&self, op: &Op, name: &str) -> Result<usize, SurgeryError> {
        self.spec.layers.iter().position(|l| l.name == name).ok_or_else(|| SurgeryError::UnknownLayer {
            op: op.to_string(),
            layer: name.into(),
            known: self.spec.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    fn apply(&mut self, op: &Op, rng: &mut rand_chacha::ChaCha8Rng) -> Result<(), SurgeryError> {
        match op {
            Op::CutAfter(name) => {
                let i = self.index(op, name)?;
                self.cut_after(i);
            }
            Op::PoolAfter(name) => {
                let i = self.index(op, name)?;
                let top = self.cut_after(i);
                let pool = format!("{}_pool", name);
                if self.spec.layer(&pool).is_some() {
                    return Err(SurgeryError::Invalid { op: op.to_string(), message: format!("a layer named {pool} exists already") });
                }
                let kind = LayerKind::Pooling { method: super::spec::PoolMethod::Ave, kernel: [1, 1], stride: [1, 1], pad: [0, 0], global: true, ceil: true };
                self.spec.layers.push(LayerSpec { name: pool.clone(), kind, bottoms: vec![top], tops: vec![pool], params: vec![] });
            }
            Op::FreezeTo(name) => {
                let i = self.index(op, name)?;
                for layer in &mut self.spec.layers[..=i] {
                    if layer.kind.is_learnable() {
                        let n = layer.params.len().max(2);
                        layer.params = (0..n).map(|b| ParamMult { lr_mult: 0.0, ..layer.param_mult(b) }).collect();
                    }
                }
            }
            Op::Remove(name) => {
                let i = self.index(op, name)?;
                let l = &self.spec.layers[i];
                if !(l.bottoms.len() == 1 && l.bottoms == l.tops) {
                    return Err(SurgeryError::Invalid { op: op.to_string(), message: format!("{name} is not an in-place layer; only those can be removed without rewiring") });
                }
                self.spec.layers.remove(i);
            }
            Op::Replace { layer, outputs } => {
                let i = self.index(op, layer)?;
                let old = self.spec.layers[i].clone();
                let kind = with_outputs(&old.kind, *outputs).ok_or_else(|| SurgeryError::Invalid {
                    op: op.to_string(),
                    message: format!("{layer} is a {} layer; only Convolution and InnerProduct layers can be replaced", old.kind.type_name()),
                })?;
                let new = LayerSpec { kind, params: new_layer_mults(&old, self.new_lr_mult), ..old.clone() };
                self.spec.layers[i] = new;
                self.drop_learnable_above(i);
                self.init_new_layer(i, rng)?;
            }
            Op::Append { after, name, outputs } => {
                let i = self.index(op, after)?;
                if self.spec.layer(name).is_some() {
                    return Err(SurgeryError::Invalid { op: op.to_string(), message: format!("a layer named {name} exists already") });
                }
                let top = self.cut_after(i);
                let shape = self.spec.infer_shapes()?.blobs[&top].clone();
                let kind = if shape.len() == 3 && shape[1] * shape[2] > 1 {
                    LayerKind::Convolution { num_output: *outputs, kernel: [1, 1], stride: [1, 1], pad: [(0, 0); 2], dilation: [1, 1], group: 1, bias: true }
                } else {
                    LayerKind::InnerProduct { num_output: *outputs, bias: true }
                };
                let proto = LayerSpec { name: name.clone(), kind, bottoms: vec![top], tops: vec![name.clone()], params: vec![] };
                let params = new_layer_mults(&proto, self.new_lr_mult);
                self.spec.layers.push(LayerSpec { params, ..proto });
                self.init_new_layer(self.spec.layers.len() - 1, rng)?;
            }
        }
        self.spec.infer_shapes()?;
        Ok(())
    }

    /// Drops every layer above layer `i` except the in-place layers acting on
    /// its output; returns that output blob.
    fn cut_after(&mut self, i: usize) -> String {
        let top = self.spec.layers[i].tops[0].clone();
        let mut keep = i + 1;
        while keep < self.spec.layers.len() && is_in_place_on(&self.spec.layers[keep], &top) {
            keep += 1;
        }
        self.spec.layers.truncate(keep);
        top
    }

    /// Drops learnable layers above `i` and everything fed by what was dropped.
    fn drop_learnable_above(&mut self, i: usize) {
        let mut dead: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut kept = self.spec.layers[..=i].to_vec();
        for l in &self.spec.layers[i + 1..] {
            let fed_by_dead = l.bottoms.iter().any(|b| dead.contains(b));
            if l.kind.is_learnable() || fed_by_dead {
                dead.extend(l.tops.iter().cloned());
            } else {
                kept.push(l.clone());
            }
        }
        self.spec.layers = kept;
    }

    /// Gaussian weights (std 0.01), zero bias, for layer `i`.
    fn init_new_layer(&mut self, i: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Result<(), SurgeryError> {
        let shapes = self.spec.param_shapes()?.swap_remove(i);
        let normal = Normal::new(0.0f32, NEW_LAYER_STD).expect("valid std");
        let blobs = shapes
            .into_iter()
            .enumerate()
            .map(|(b, s)| {
                let n = s.iter().product();
                let data = if b == 0 { (0..n).map(|_| normal.sample(rng)).collect() } else { vec![0.0; n] };
                Blob::new(s, data)
            })
            .collect();
        let name = self.spec.layers[i].name.clone();
        self.weights.layers.insert(name.clone(), blobs);
        if !self.new_layers.contains(&name) {
            self.new_layers.push(name);
        }
        Ok(())
    }
}

fn is_in_place_on(l: &LayerSpec, blob: &str) -> bool {
    l.bottoms.len() == 1 && l.bottoms[0] == blob && l.tops.len() == 1 && l.tops[0] == blob
}

fn with_outputs(kind: &LayerKind, n: usize) -> Option<LayerKind> {
    match kind.clone() {
        LayerKind::Convolution { kernel, stride, pad, dilation, bias, .. } => {
            Some(LayerKind::Convolution { num_output: n, kernel, stride, pad, dilation, group: 1, bias })
        }
        LayerKind::InnerProduct { bias, .. } => Some(LayerKind::InnerProduct { num_output: n, bias }),
        _ => None,
    }
}

/// A new layer learns faster than the backbone: its multipliers are the
/// backbone's (weights 1/1, biases 2/0), the learning rate's times `factor`.
fn new_layer_mults(old: &LayerSpec, factor: f32) -> Vec<ParamMult> {
    (0..2)
        .map(|b| {
            let base = old.params.get(b).copied().unwrap_or(if b == 0 { ParamMult { lr_mult: 1.0, decay_mult: 1.0 } } else { ParamMult { lr_mult: 2.0, decay_mult: 0.0 } });
            ParamMult { lr_mult: base.lr_mult * factor, decay_mult: base.decay_mult }
        })
        .collect()
}

/// A named surgery of a backbone, with the learning rate the paper used for
/// it where that differs from the base 0.001.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    pub ops: &'static str,
    pub about: &'static str,
    /// The paper's base learning rate for this variant, if not the default.
    pub base_lr: Option<f64>,
    /// The paper's variant this one is (CaffeNet) or stands for (other nets).
    pub paper: Option<&'static str>,
}

const fn preset(name: &'static str, ops: &'static str, about: &'static str, paper: Option<&'static str>) -> Preset {
    Preset { name, ops, about, base_lr: None, paper }
}

/// A replaced layer that becomes the classifier loses its ReLU and dropout
/// (a ReLU on two logits ties them at 0, the trap SqueezeNet showed).
/// In-place ReLU and Dropout of a cut layer stay (`cut-after`): in Caffe
/// they are separate layers writing the same blob, and deleting the layers
/// above leaves them in place, so the paper's fc7-4096 puts its softmax on
/// fc7 after relu7 and drop7. A K-way softmax kept this way is trained on
/// labels 0/1 as classes 0 and 1 of K, and scored on outputs 0 and 1 only
/// (see `eval::metrics::predicted`).
const CAFFENET: &[Preset] = &[
    preset("ft", "replace:fc8:2", "the paper's fine-tuning: fc8 replaced by 2 neurons (lr ×10)", Some("ft")),
    preset("fc7-4096", "cut-after:fc7", "raw ablation: fc8 removed, softmax on fc7's 4,096 outputs (after relu7, drop7)", Some("fc7-4096")),
    preset("fc6-4096", "cut-after:fc6", "raw ablation: fc7 and fc8 removed, softmax on fc6's 4,096 outputs", Some("fc6-4096")),
    preset("fc7-2", "replace:fc7:2,remove:relu7,remove:drop7", "fc8 removed, fc7 replaced by 2 neurons on fc6, the softmax on them (lr ×10)", Some("fc7-2")),
    Preset { base_lr: Some(1e-4), ..preset("fc6-2", "replace:fc6:2,remove:relu6,remove:drop6", "fc7, fc8 removed, fc6 replaced by 2 neurons on pool5 (lr ×10; base lr 1e-4 \"to avoid divergence\")", Some("fc6-2")) },
    preset("fc8-1000", "cut-after:fc8", "fc8 kept with its 1,000 outputs: nothing new, no ×10", Some("fc8-1000")),
    preset("fc9-2", "append:fc8:fc9:2", "a new 2-neuron fc9 on top of fc8 (lr ×10 on fc9)", Some("fc9-2")),
];

/// SqueezeNet's top is fire8 → pool8 → fire9 → drop9 → conv10 (1×1, 1,000)
/// → ReLU → global average pool. The paper's variants map onto it with
/// conv10 for fc8 (the classifier), fire9 for fc7 (the last hidden layer)
/// and fire8 for fc6; a "2-neuron layer" on a map is a 1×1 convolution with
/// 2 outputs and a global average pool (SqueezeNet's own classifier
/// pattern), and a raw ablation averages the kept map globally. The
/// variants keep drop9 out (dropout before an average shifts the features
/// between training and test) and conv1…fire4 frozen, as `lpft`.
const SQUEEZENET: &[Preset] = &[
    preset("ft", "replace:conv_final:2,remove:relu_conv_final", "conv10 replaced by 2 outputs, its ReLU removed (a ReLU on the logits ties them)", Some("ft")),
    preset("paper", "replace:conv_final:2", "the paper's recipe applied literally: conv10 replaced by 2 outputs, ReLU kept", Some("ft")),
    preset("fc9-2", "append:pool_final:fc9:2", "the paper's fc9-2: a new 2-output layer on the pooled 1,000 ImageNet scores", Some("fc9-2")),
    preset("lpft", "append:pool_final:fc9:2,remove:drop9,freeze-to:fire4/conv3x3_2", "fc9-2 without drop9, conv1…fire4 frozen; meant for --head-init probe", Some("fc9-2")),
    preset("conv10-1000", "cut-after:pool_final,remove:drop9,freeze-to:fire4/conv3x3_2", "fc8-1000: conv10 kept with its 1,000 outputs, softmax on the pooled scores; nothing new", Some("fc8-1000")),
    preset("fire9-512", "pool-after:fire9/concat,remove:drop9,freeze-to:fire4/conv3x3_2", "fc7-4096: conv10 removed, softmax on fire9's 512 globally pooled outputs", Some("fc7-4096")),
    preset("fire8-512", "pool-after:fire8/concat,freeze-to:fire4/conv3x3_2", "fc6-4096: pool8, fire9, conv10 removed, softmax on fire8's 512 globally pooled outputs", Some("fc6-4096")),
    preset("fire9-2", "append:pool8:fire9_2:2,pool-after:fire9_2,freeze-to:fire4/conv3x3_2", "fc7-2: conv10 removed, fire9 replaced by a 2-output 1×1 conv on pool8 + global pool", Some("fc7-2")),
    preset("fire8-2", "append:fire7/concat:fire8_2:2,pool-after:fire8_2,freeze-to:fire4/conv3x3_2", "fc6-2: fire8 and above replaced by a 2-output 1×1 conv on fire7 + global pool", Some("fc6-2")),
];

/// EfficientNet-Lite0's top is head (1×1 conv to 1,280, BatchNorm, ReLU6)
/// → global average pool → dropout 0.2 → _fc (1,000). Its BatchNorm layers
/// keep their ImageNet statistics while fine-tuning (Caffe's
/// use_global_stats), so small batches do not disturb them.
const EFFICIENTNET_LITE0: &[Preset] = &[
    preset("ft", "replace:_fc:2", "_fc replaced by 2 outputs (the paper's recipe)", Some("ft")),
    preset(
        "lpft",
        "replace:_fc:2,remove:dropout,freeze-to:_blocks.12._bn2/scale",
        "_fc replaced by 2 outputs, dropout removed, the stem and blocks 0…12 frozen; meant for --head-init probe",
        Some("ft"),
    ),
];

/// Named surgeries of a backbone.
pub fn presets(backbone: &str) -> &'static [Preset] {
    match backbone {
        "caffenet" => CAFFENET,
        "squeezenet1.0" => SQUEEZENET,
        "efficientnet-lite0" => EFFICIENTNET_LITE0,
        _ => &[],
    }
}

pub fn find_preset(backbone: &str, name: &str) -> Option<&'static Preset> {
    presets(backbone).iter().find(|p| p.name == name)
}

/// Resolves `--surgery`: a preset name of the backbone, or ops.
pub fn resolve(backbone: &str, text: &str) -> Result<Vec<Op>, SurgeryError> {
    match find_preset(backbone, text) {
        Some(p) => parse_ops(p.ops),
        None => parse_ops(text),
    }
}
