//! `.prototxt` network definitions (Caffe's `NetParameter` in text format) to
//! a [`NetSpec`]: the current `layer { type: "Convolution" }` form, the old V1
//! `layers { type: CONVOLUTION }` form, and the four ways of declaring the
//! input (`input` + `input_dim`, `input` + `input_shape`, an `Input` layer).
//! Loss and accuracy layers are left out: deepsent adds its own loss.

use super::text_format::{self, Field, Message, Pos, Value};
use crate::model::spec::{InputSpec, MAX_OUTPUTS, LayerKind, LayerSpec, NetSpec, ParamMult, PoolMethod};
use crate::preprocess::settings::MAX_SIDE;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{pos}: {message}")]
pub struct PrototxtError {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

/// Reads a prototxt file.
pub fn read(path: &Path) -> Result<NetSpec, PrototxtError> {
    let text = std::fs::read_to_string(path).map_err(|e| PrototxtError {
        file: path.display().to_string(),
        pos: Pos { line: 0, col: 0 },
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses prototxt text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<NetSpec, PrototxtError> {
    let root = text_format::parse(text).map_err(|e| PrototxtError { file: file.into(), pos: e.pos, message: e.message })?;
    if let Some((field, near)) = super::fields::unknown_field(&root) {
        let hint = near.map(|n| format!(": did you mean `{n}`?")).unwrap_or_default();
        return Err(PrototxtError { file: file.into(), pos: field.pos, message: format!("unknown field `{}`{hint}", field.name) });
    }
    Converter { file }.net(&root)
}

struct Converter<'a> {
    file: &'a str,
}

type R<T> = Result<T, PrototxtError>;

/// Layer types that carry training data or compute a loss: not part of the
/// network deepsent builds.
const SKIPPED_TYPES: [&str; 14] = [
    "SoftmaxWithLoss", "Accuracy", "Silence", "Split", "EuclideanLoss", "HingeLoss",
    "SOFTMAX_LOSS", "ACCURACY", "SILENCE", "SPLIT", "EUCLIDEAN_LOSS", "HINGE_LOSS",
    "SigmoidCrossEntropyLoss", "SIGMOID_CROSS_ENTROPY_LOSS",
];
const DATA_TYPES: [&str; 12] = [
    "Data", "ImageData", "MemoryData", "HDF5Data", "WindowData", "DummyData",
    "DATA", "IMAGE_DATA", "MEMORY_DATA", "HDF5_DATA", "WINDOW_DATA", "DUMMY_DATA",
];

impl Converter<'_> {
    fn err<T>(&self, pos: Pos, message: impl Into<String>) -> R<T> {
        Err(PrototxtError { file: self.file.into(), pos, message: message.into() })
    }

    fn msg<'m>(&self, f: &'m Field) -> R<&'m Message> {
        match &f.value {
            Value::Message(m) => Ok(m),
            _ => self.err(f.pos, format!("{} must be a message {{ … }}", f.name)),
        }
    }

    fn sub<'m>(&self, m: &'m Message, name: &str) -> R<Option<&'m Message>> {
        m.get(name).map(|f| self.msg(f)).transpose()
    }

    fn number<T: std::str::FromStr>(&self, f: &Field) -> R<T> {
        match &f.value {
            Value::Number(s) => s.parse().or_else(|_| self.err(f.pos, format!("{}: {s:?} is not a valid number here", f.name))),
            other => self.err(f.pos, format!("{} must be a number, found {other:?}", f.name)),
        }
    }

    /// A layer's output count: at least 1, and at most `MAX_OUTPUTS`, checked
    /// here so that no weight blob is sized from an absurd number.
    fn outputs(&self, f: &Field) -> R<usize> {
        let n: usize = self.number(f)?;
        if n == 0 || n > MAX_OUTPUTS {
            return self.err(f.pos, format!("num_output {n} must be between 1 and {MAX_OUTPUTS}"));
        }
        Ok(n)
    }

    fn uint(&self, m: &Message, name: &str, default: usize) -> R<usize> {
        m.get(name).map_or(Ok(default), |f| self.number(f))
    }

    fn uints(&self, m: &Message, name: &str) -> R<Vec<usize>> {
        m.all(name).map(|f| self.number(f)).collect()
    }

    fn float(&self, m: &Message, name: &str, default: f32) -> R<f32> {
        m.get(name).map_or(Ok(default), |f| self.number(f))
    }

    fn boolean(&self, m: &Message, name: &str, default: bool) -> R<bool> {
        match m.get(name) {
            None => Ok(default),
            Some(f) => match &f.value {
                Value::Ident(s) if s == "true" => Ok(true),
                Value::Ident(s) if s == "false" => Ok(false),
                Value::Number(s) if s == "1" || s == "0" => Ok(s == "1"),
                _ => self.err(f.pos, format!("{} must be true or false", f.name)),
            },
        }
    }

    fn string(&self, m: &Message, name: &str) -> R<Option<(String, Pos)>> {
        match m.get(name) {
            None => Ok(None),
            Some(f) => match &f.value {
                Value::Str(s) | Value::Ident(s) => Ok(Some((s.clone(), f.pos))),
                _ => self.err(f.pos, format!("{} must be a string", f.name)),
            },
        }
    }

    fn strings(&self, m: &Message, name: &str) -> R<Vec<String>> {
        m.all(name)
            .map(|f| match &f.value {
                Value::Str(s) => Ok(s.clone()),
                _ => self.err(f.pos, format!("{} must be a string", f.name)),
            })
            .collect()
    }

    fn ident(&self, m: &Message, name: &str) -> R<Option<(String, Pos)>> {
        self.string(m, name)
    }

    fn shape_of(&self, m: &Message, pos: Pos) -> R<[usize; 3]> {
        let dims = self.uints(m, "dim")?;
        match dims[..] {
            [_, c, h, w] | [c, h, w] => Ok([c, h, w]),
            _ => self.err(pos, format!("input shape must have 4 dims (N, C, H, W), has {dims:?}")),
        }
    }

    fn net(&self, root: &Message) -> R<NetSpec> {
        let name = self.string(root, "name")?.map(|s| s.0).unwrap_or_else(|| "net".into());
        let mut input: Option<InputSpec> = None;
        if let Some((blob, pos)) = self.string(root, "input")? {
            let dims = self.uints(root, "input_dim")?;
            let [c, h, w] = if !dims.is_empty() {
                match dims[..] {
                    [_, c, h, w] => [c, h, w],
                    _ => return self.err(pos, format!("input_dim must be given 4 times (N, C, H, W), found {dims:?}")),
                }
            } else if let Some(f) = root.get("input_shape") {
                self.shape_of(self.msg(f)?, f.pos)?
            } else {
                return self.err(pos, "input without input_dim or input_shape");
            };
            input = Some(self.input(blob, [c, h, w], pos)?);
        }
        let v2: Vec<&Field> = root.all("layer").collect();
        let v1: Vec<&Field> = root.all("layers").collect();
        if !v2.is_empty() && !v1.is_empty() {
            return self.err(v1[0].pos, "mixes V1 `layers` and current `layer` definitions");
        }
        let mut layers = Vec::new();
        for f in v2.iter().chain(&v1) {
            let m = self.msg(f)?;
            let Some((ty, ty_pos)) = self.string(m, "type")? else {
                return self.err(f.pos, "layer without a type");
            };
            let layer_name = self.string(m, "name")?.map(|s| s.0).unwrap_or_else(|| format!("layer{}", layers.len()));
            if self.is_train_only(m)? || SKIPPED_TYPES.contains(&ty.as_str()) {
                continue;
            }
            let bottoms = self.strings(m, "bottom")?;
            let tops = self.strings(m, "top")?;
            if ty == "Input" || ty == "INPUT" {
                let p = self.sub(m, "input_param")?;
                let shape = p.and_then(|p| p.get("shape"));
                let Some(shape) = shape else { return self.err(f.pos, "Input layer without input_param { shape { … } }") };
                let [c, h, w] = self.shape_of(self.msg(shape)?, shape.pos)?;
                let blob = tops.first().cloned().unwrap_or_else(|| "data".into());
                input = Some(self.input(blob, [c, h, w], shape.pos)?);
                continue;
            }
            if DATA_TYPES.contains(&ty.as_str()) {
                return self.err(ty_pos, format!("{ty} layers read training databases; use the deploy prototxt (with an input declaration) instead"));
            }
            let kind = self.kind(&ty, ty_pos, m)?;
            let params = self.param_mults(m)?;
            layers.push(LayerSpec { name: layer_name, kind, bottoms, tops, params });
        }
        let Some(input) = input else {
            return self.err(Pos { line: 1, col: 1 }, "no input declared (input/input_dim, input_shape or an Input layer)");
        };
        Ok(NetSpec { name, input, layers })
    }

    /// The input, its sizes checked before anything is sized from them.
    fn input(&self, blob: String, [channels, height, width]: [usize; 3], pos: Pos) -> R<InputSpec> {
        if !(1..=MAX_SIDE).contains(&height) || !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_OUTPUTS).contains(&channels) {
            return self.err(pos, format!("input {channels}×{height}×{width}: each side must be between 1 and {MAX_SIDE}, the channels between 1 and {MAX_OUTPUTS}"));
        }
        Ok(InputSpec { blob, channels, height, width })
    }

    fn is_train_only(&self, m: &Message) -> R<bool> {
        for inc in m.all("include") {
            if let Some((phase, _)) = self.ident(self.msg(inc)?, "phase")? {
                if phase == "TRAIN" {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn param_mults(&self, m: &Message) -> R<Vec<ParamMult>> {
        let v2: Vec<ParamMult> = m
            .all("param")
            .filter_map(|f| match &f.value {
                Value::Message(p) => Some(p),
                _ => None,
            })
            .map(|p| Ok(ParamMult { lr_mult: self.float(p, "lr_mult", 1.0)?, decay_mult: self.float(p, "decay_mult", 1.0)? }))
            .collect::<R<_>>()?;
        if !v2.is_empty() {
            return Ok(v2);
        }
        // V1: blobs_lr and weight_decay, one value per blob.
        let lrs: Vec<f32> = m.all("blobs_lr").map(|f| self.number(f)).collect::<R<_>>()?;
        let decays: Vec<f32> = m.all("weight_decay").map(|f| self.number(f)).collect::<R<_>>()?;
        Ok((0..lrs.len().max(decays.len()))
            .map(|i| ParamMult { lr_mult: lrs.get(i).copied().unwrap_or(1.0), decay_mult: decays.get(i).copied().unwrap_or(1.0) })
            .collect())
    }

    /// Kernel, stride or pad: `NAME_size`/`NAME` (1 value = square, or one
    /// per axis) or `NAME_h` + `NAME_w`.
    fn pair(&self, p: &Message, repeated: &str, h: &str, w: &str, default: usize, pos: Pos) -> R<[usize; 2]> {
        let v = self.uints(p, repeated)?;
        let ph = p.get(h).map(|f| self.number::<usize>(f)).transpose()?;
        let pw = p.get(w).map(|f| self.number::<usize>(f)).transpose()?;
        match (v.as_slice(), ph, pw) {
            ([], Some(a), Some(b)) => Ok([a, b]),
            ([], None, None) => Ok([default, default]),
            ([a], None, None) => Ok([*a, *a]),
            ([a, b], None, None) => Ok([*a, *b]),
            _ => self.err(pos, format!("give either {repeated} (1 or 2 values) or both {h} and {w}")),
        }
    }

    fn kind(&self, ty: &str, pos: Pos, m: &Message) -> R<LayerKind> {
        let empty = Message::default();
        let param = |name: &str| -> R<&Message> { Ok(self.sub(m, name)?.unwrap_or(&empty)) };
        Ok(match ty {
            "Convolution" | "CONVOLUTION" => {
                let p = param("convolution_param")?;
                let Some(n) = p.get("num_output") else { return self.err(pos, "Convolution without num_output") };
                let pad = self.pair(p, "pad", "pad_h", "pad_w", 0, pos)?;
                // deepsent's extension for TensorFlow "same" padding: the padding
                // after (bottom, right) when it differs from the padding before.
                let pad_end = if ["pad_end", "pad_end_h", "pad_end_w"].iter().any(|f| p.get(f).is_some()) {
                    self.pair(p, "pad_end", "pad_end_h", "pad_end_w", 0, pos)?
                } else {
                    pad
                };
                let kernel = self.pair(p, "kernel_size", "kernel_h", "kernel_w", 0, pos)?;
                if kernel.contains(&0) {
                    return self.err(pos, "Convolution without kernel_size");
                }
                let dil = self.uints(p, "dilation")?;
                LayerKind::Convolution {
                    num_output: self.outputs(n)?,
                    kernel,
                    stride: self.pair(p, "stride", "stride_h", "stride_w", 1, pos)?,
                    pad: [(pad[0], pad_end[0]), (pad[1], pad_end[1])],
                    dilation: match dil[..] {
                        [] => [1, 1],
                        [d] => [d, d],
                        [a, b] => [a, b],
                        _ => return self.err(pos, "dilation takes 1 or 2 values"),
                    },
                    group: self.uint(p, "group", 1)?,
                    bias: self.boolean(p, "bias_term", true)?,
                }
            }
            "InnerProduct" | "INNER_PRODUCT" => {
                let p = param("inner_product_param")?;
                let Some(n) = p.get("num_output") else { return self.err(pos, "InnerProduct without num_output") };
                if self.boolean(p, "transpose", false)? {
                    return self.err(pos, "InnerProduct with transpose: true is not supported");
                }
                if self.uint(p, "axis", 1)? != 1 {
                    return self.err(pos, "InnerProduct on an axis other than 1 is not supported");
                }
                LayerKind::InnerProduct { num_output: self.outputs(n)?, bias: self.boolean(p, "bias_term", true)? }
            }
            "ReLU" | "RELU" => LayerKind::ReLU { negative_slope: self.float(param("relu_param")?, "negative_slope", 0.0)?, max: None },
            "Clip" => {
                let p = param("clip_param")?;
                if self.float(p, "min", 0.0)? != 0.0 {
                    return self.err(pos, "only Clip with min 0 (a clipped ReLU) is supported");
                }
                LayerKind::ReLU { negative_slope: 0.0, max: Some(self.float(p, "max", f32::INFINITY)?) }
            }
            "Pooling" | "POOLING" => {
                let p = param("pooling_param")?;
                let method = match self.ident(p, "pool")? {
                    None => PoolMethod::Max,
                    Some((s, _)) if s == "MAX" || s == "0" => PoolMethod::Max,
                    Some((s, _)) if s == "AVE" || s == "1" => PoolMethod::Ave,
                    Some((s, ppos)) => return self.err(ppos, format!("pooling method {s} is not supported (MAX or AVE)")),
                };
                let global = self.boolean(p, "global_pooling", false)?;
                let kernel = self.pair(p, "kernel_size", "kernel_h", "kernel_w", 0, pos)?;
                if !global && kernel.contains(&0) {
                    return self.err(pos, "Pooling without kernel_size or global_pooling");
                }
                let ceil = match self.ident(p, "round_mode")? {
                    None => true,
                    Some((s, _)) if s == "CEIL" => true,
                    Some((s, _)) if s == "FLOOR" => false,
                    Some((s, rpos)) => return self.err(rpos, format!("unknown round_mode {s}")),
                };
                LayerKind::Pooling { method, kernel, stride: self.pair(p, "stride", "stride_h", "stride_w", 1, pos)?, pad: self.pair(p, "pad", "pad_h", "pad_w", 0, pos)?, global, ceil }
            }
            "LRN" => {
                let p = param("lrn_param")?;
                if let Some((region, rpos)) = self.ident(p, "norm_region")? {
                    if region != "ACROSS_CHANNELS" {
                        return self.err(rpos, format!("LRN norm_region {region} is not supported (ACROSS_CHANNELS)"));
                    }
                }
                LayerKind::Lrn { local_size: self.uint(p, "local_size", 5)?, alpha: self.float(p, "alpha", 1.0)?, beta: self.float(p, "beta", 0.75)?, k: self.float(p, "k", 1.0)? }
            }
            "Dropout" | "DROPOUT" => LayerKind::Dropout { ratio: self.float(param("dropout_param")?, "dropout_ratio", 0.5)? },
            "Concat" | "CONCAT" => {
                let p = param("concat_param")?;
                let axis = match p.get("axis") {
                    Some(f) => self.number(f)?,
                    None => self.uint(p, "concat_dim", 1)?,
                };
                LayerKind::Concat { axis }
            }
            "Softmax" | "SOFTMAX" => {
                if self.uint(param("softmax_param")?, "axis", 1)? != 1 {
                    return self.err(pos, "Softmax on an axis other than 1 is not supported");
                }
                LayerKind::Softmax
            }
            "BatchNorm" => LayerKind::BatchNorm { eps: self.float(param("batch_norm_param")?, "eps", 1e-5)? },
            "Scale" => {
                let p = param("scale_param")?;
                if self.uint(p, "axis", 1)? != 1 || self.uint(p, "num_axes", 1)? != 1 {
                    return self.err(pos, "only per-channel Scale (axis 1, num_axes 1) is supported");
                }
                LayerKind::Scale { bias: self.boolean(p, "bias_term", false)? }
            }
            "Eltwise" | "ELTWISE" => {
                let p = param("eltwise_param")?;
                match self.ident(p, "operation")? {
                    None => {}
                    Some((s, _)) if s == "SUM" || s == "1" => {}
                    Some((s, opos)) => return self.err(opos, format!("Eltwise operation {s} is not supported (SUM)")),
                }
                LayerKind::Eltwise { coeffs: p.all("coeff").map(|f| self.number(f)).collect::<R<_>>()? }
            }
            "Flatten" | "FLATTEN" => LayerKind::Flatten,
            other => return self.err(pos, format!("unknown layer type {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_forms_give_the_same_spec() {
        let v2 = r#"
            name: "tiny"
            input: "data"
            input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
            layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
                    param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
                    convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 1 } }
            layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
            layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
            layer { name: "fc" type: "InnerProduct" bottom: "pool1" top: "fc" inner_product_param { num_output: 2 } }
            layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
        "#;
        let v1 = r#"
            name: "tiny"
            input: "data"
            input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
            layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
                     blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
                     convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 } }
            layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
            layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
            layers { name: "fc" type: INNER_PRODUCT bottom: "pool1" top: "fc" inner_product_param { num_output: 2 } }
        "#;
        let a = parse(v2, "v2").unwrap();
        let b = parse(v1, "v1").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.layers.len(), 4);
        assert_eq!(a.layers[0].params[1], ParamMult { lr_mult: 2.0, decay_mult: 0.0 });
        let shapes = a.infer_shapes().unwrap();
        assert_eq!(shapes.blobs["conv1"], vec![4, 4, 4]);
        assert_eq!(shapes.blobs["pool1"], vec![4, 2, 2]);
        assert_eq!(a.parameter_count().unwrap(), 4 * 3 * 9 + 4 + 2 * 16 + 2);
    }

    #[test]
    fn input_layer_and_errors_with_positions() {
        let ok = "layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } } }";
        assert_eq!(parse(ok, "x").unwrap().input, InputSpec { blob: "data".into(), channels: 3, height: 224, width: 224 });

        let unknown = format!("{ok}\nlayer {{ name: \"w\" type: \"Warp\" bottom: \"data\" top: \"w\" }}");
        let e = parse(&unknown, "net.prototxt").unwrap_err();
        assert_eq!(e.to_string(), "net.prototxt:2:19: unknown layer type \"Warp\"");

        let bad_number = format!("{ok}\nlayer {{ name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\"\n convolution_param {{ num_output: many kernel_size: 3 }} }}");
        let e = parse(&bad_number, "n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 3, col: 22 }, "{e}");

        // An input no image can be brought to, or whose one image would not fit in memory.
        for (dims, at) in [("input_dim: 1 input_dim: 3 input_dim: 100000 input_dim: 100000", "2:1"), ("input_dim: 1 input_dim: 3 input_dim: 0 input_dim: 227", "2:1")] {
            let e = parse(&format!("name: \"n\"\ninput: \"data\"\n{dims}\nlayer {{ name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"data\" }}"), "n").unwrap_err();
            assert_eq!(e.pos.to_string(), at, "{e}");
            assert!(e.message.contains("must be between 1 and 4096"), "{e}");
        }
        let e = parse(&ok.replace("dim: 224 dim: 224", "dim: 224 dim: 5000000"), "x").unwrap_err();
        assert!(e.message.contains("3×224×5000000"), "{e}");

        // No output at all, or so many that one layer's weights would not fit in memory.
        for n in ["0", "2000000000", "4294967296"] {
            let text = bad_number.replace("many", n);
            let e = parse(&text, "n").unwrap_err();
            assert!(e.message.contains(&format!("num_output {n} must be between 1 and")) && e.pos.line == 3, "{e}");
        }

        let e = parse("layer { name: \"a\" type: \"ReLU\" ", "n").unwrap_err();
        assert!(e.to_string().starts_with("n:1:"), "{e}");
        assert!(e.message.contains("missing '}'"));
    }
}
