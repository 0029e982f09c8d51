//! The fields each prototxt message may have, from Caffe's `caffe.proto`:
//! an unknown field is an error with its position and the nearest known
//! name, never ignored (a typo `stide: 2` would silently give another
//! network).
//!
//! Only the messages deepsent reads are checked. A layer's parameter message
//! for a layer type deepsent does not build (`data_param`, a fork's
//! `prior_box_param`) is not looked into: any `*_param` field is accepted on
//! a layer, and its contents are left to the layers that read them.

use super::text_format::{Field, Message, Value};

/// Where a message sits in Caffe's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Net,
    Layer,
    V1Layer,
    ParamSpec,
    NetStateRule,
    NetState,
    BlobShape,
    Filler,
    Input,
    Convolution,
    Pooling,
    InnerProduct,
    Lrn,
    Relu,
    Dropout,
    Concat,
    Softmax,
    BatchNorm,
    Scale,
    Eltwise,
    Flatten,
    Clip,
}

/// The parameter messages of the layer types deepsent builds.
const LAYER_PARAMS: [(&str, Kind); 14] = [
    ("input_param", Kind::Input),
    ("convolution_param", Kind::Convolution),
    ("pooling_param", Kind::Pooling),
    ("inner_product_param", Kind::InnerProduct),
    ("lrn_param", Kind::Lrn),
    ("relu_param", Kind::Relu),
    ("dropout_param", Kind::Dropout),
    ("concat_param", Kind::Concat),
    ("softmax_param", Kind::Softmax),
    ("batch_norm_param", Kind::BatchNorm),
    ("scale_param", Kind::Scale),
    ("eltwise_param", Kind::Eltwise),
    ("flatten_param", Kind::Flatten),
    ("clip_param", Kind::Clip),
];

impl Kind {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Net => &["name", "input", "input_shape", "input_dim", "force_backward", "state", "debug_info", "layer", "layers"],
            Kind::Layer => &["name", "type", "bottom", "top", "phase", "loss_weight", "param", "blobs", "propagate_down", "include", "exclude"],
            Kind::V1Layer => &["bottom", "top", "name", "include", "exclude", "type", "blobs", "param", "blob_share_mode", "blobs_lr", "weight_decay", "loss_weight", "layer"],
            Kind::ParamSpec => &["name", "share_mode", "lr_mult", "decay_mult"],
            Kind::NetStateRule => &["phase", "min_level", "max_level", "stage", "not_stage"],
            Kind::NetState => &["phase", "level", "stage"],
            Kind::BlobShape => &["dim"],
            Kind::Filler => &["type", "value", "min", "max", "mean", "std", "sparse", "variance_norm"],
            Kind::Input => &["shape"],
            Kind::Convolution => &[
                "num_output", "bias_term", "pad", "kernel_size", "stride", "dilation", "pad_h", "pad_w", "kernel_h", "kernel_w", "stride_h", "stride_w",
                "group", "weight_filler", "bias_filler", "engine", "axis", "force_nd_im2col",
                // deepsent's extension for TensorFlow "same" padding (see prototxt.rs).
                "pad_end", "pad_end_h", "pad_end_w",
            ],
            Kind::Pooling => &["pool", "pad", "pad_h", "pad_w", "kernel_size", "kernel_h", "kernel_w", "stride", "stride_h", "stride_w", "engine", "global_pooling", "round_mode"],
            Kind::InnerProduct => &["num_output", "bias_term", "weight_filler", "bias_filler", "axis", "transpose"],
            Kind::Lrn => &["local_size", "alpha", "beta", "norm_region", "k", "engine"],
            Kind::Relu => &["negative_slope", "engine"],
            Kind::Dropout => &["dropout_ratio", "scale_train"],
            Kind::Concat => &["axis", "concat_dim"],
            Kind::Softmax => &["engine", "axis"],
            Kind::BatchNorm => &["use_global_stats", "moving_average_fraction", "eps"],
            Kind::Scale => &["axis", "num_axes", "filler", "bias_term", "bias_filler"],
            Kind::Eltwise => &["operation", "coeff", "stable_prod_grad"],
            Kind::Flatten => &["axis", "end_axis"],
            Kind::Clip => &["min", "max"],
        }
    }

    /// The kind of a message-valued field, where deepsent reads inside it.
    fn child(self, field: &str) -> Option<Kind> {
        Some(match (self, field) {
            (Kind::Net, "layer") => Kind::Layer,
            (Kind::Net, "layers") => Kind::V1Layer,
            (Kind::Net, "input_shape") => Kind::BlobShape,
            (Kind::Net, "state") => Kind::NetState,
            (Kind::Layer, "param") => Kind::ParamSpec,
            (Kind::Layer | Kind::V1Layer, "include" | "exclude") => Kind::NetStateRule,
            (Kind::Layer | Kind::V1Layer, param) => return LAYER_PARAMS.iter().find(|(name, _)| *name == param).map(|(_, kind)| *kind),
            (Kind::Input, "shape") => Kind::BlobShape,
            (Kind::Convolution | Kind::InnerProduct, "weight_filler" | "bias_filler") => Kind::Filler,
            (Kind::Scale, "filler" | "bias_filler") => Kind::Filler,
            _ => return None,
        })
    }

    fn known(self, field: &str) -> bool {
        self.fields().contains(&field) || (matches!(self, Kind::Layer | Kind::V1Layer) && field.ends_with("_param"))
    }
}

/// The first field, depth first, that its message does not have in Caffe's
/// schema, with the nearest known name when one is close.
pub fn unknown_field(net: &Message) -> Option<(&Field, Option<&'static str>)> {
    walk(net, Kind::Net)
}

fn walk(message: &Message, kind: Kind) -> Option<(&Field, Option<&'static str>)> {
    for field in &message.fields {
        if !kind.known(&field.name) {
            let params = LAYER_PARAMS.iter().map(|(name, _)| *name).filter(|_| matches!(kind, Kind::Layer | Kind::V1Layer));
            return Some((field, nearest(&field.name, kind.fields().iter().copied().chain(params))));
        }
        if let (Value::Message(inner), Some(child)) = (&field.value, kind.child(&field.name)) {
            if let Some(found) = walk(inner, child) {
                return Some(found);
            }
        }
    }
    None
}

/// The known name within a third of the typo's length in edits (at least 1,
/// at most 3), the closest first.
fn nearest(name: &str, known: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    known.map(|k| (strsim::damerau_levenshtein(name, k), k)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::caffe::text_format;

    fn first_unknown(text: &str) -> Option<(String, String, Option<&'static str>)> {
        let tree = text_format::parse(text).unwrap();
        unknown_field(&tree).map(|(f, near)| (f.name.clone(), f.pos.to_string(), near))
    }

    #[test]
    fn typos_are_found_where_they_are_with_the_name_meant() {
        let net = "input: \"data\"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\nlayer { name: \"c\" type: \"Convolution\"\n  convolution_param { num_output: 2 kernel_size: 3 stide: 2 weight_filler { type: \"xavier\" } } }";
        assert_eq!(first_unknown(net), Some(("stide".into(), "4:52".into(), Some("stride"))));
        assert_eq!(first_unknown(&net.replace("stide", "stride")), None);
        // Inside a filler, a parameter spec, and at the top of the file.
        let filler = net.replace("stide: 2", "").replace("type: \"xavier\"", "sdt: 0.01");
        assert_eq!(first_unknown(&filler).map(|u| (u.0, u.2)), Some(("sdt".into(), Some("std"))));
        let param = net.replace("stide: 2", "").replace("layer { ", "layer { param { lr_mul: 1 } ");
        assert_eq!(first_unknown(&param).map(|u| (u.0, u.2)), Some(("lr_mul".into(), Some("lr_mult"))));
        assert_eq!(first_unknown(&format!("nmae: \"x\"\n{}", net.replace("stide: 2", ""))).map(|u| (u.0, u.2)), Some(("nmae".into(), Some("name"))));
        // A misspelt parameter message on a layer is caught; nothing near: no suggestion.
        let misspelt = net.replace("stide: 2", "").replace("convolution_param", "convolution_parm");
        assert_eq!(first_unknown(&misspelt).map(|u| (u.0, u.2)), Some(("convolution_parm".into(), Some("convolution_param"))));
        assert_eq!(first_unknown(&net.replace("stide: 2", "frobnicate: 1")).map(|u| u.2), Some(None));
    }

    #[test]
    fn parameters_of_layers_deepsent_does_not_build_are_not_looked_into() {
        let net = "layer { name: \"d\" type: \"Data\" data_param { sourse: \"x\" } transform_param { mirror: true } prior_box_param { min_size: 30 } }";
        assert_eq!(first_unknown(net), None);
    }
}
