//! A spec back to prototxt text (current `layer { }` form), so the result of
//! a surgery can be read, diffed and loaded by Caffe or by deepsent again.

use crate::model::spec::{LayerKind, NetSpec, PoolMethod};
use std::fmt::Write;

pub fn to_prototxt(spec: &NetSpec) -> String {
    let mut s = String::new();
    let i = &spec.input;
    let _ = writeln!(s, "name: {:?}\ninput: {:?}\ninput_shape {{ dim: 1 dim: {} dim: {} dim: {} }}", spec.name, i.blob, i.channels, i.height, i.width);
    for l in &spec.layers {
        // A clipped ReLU (ReLU6) is Caffe's `Clip` layer with min 0.
        let type_name = match l.kind {
            LayerKind::ReLU { negative_slope, max: Some(_) } if negative_slope == 0.0 => "Clip",
            _ => l.kind.type_name(),
        };
        let _ = writeln!(s, "layer {{\n  name: {:?}\n  type: {type_name:?}", l.name);
        for b in &l.bottoms {
            let _ = writeln!(s, "  bottom: {b:?}");
        }
        for t in &l.tops {
            let _ = writeln!(s, "  top: {t:?}");
        }
        for p in &l.params {
            let _ = writeln!(s, "  param {{ lr_mult: {} decay_mult: {} }}", p.lr_mult, p.decay_mult);
        }
        // `kernel_size: k` / `stride: s` / `pad: p`, or the `_h` / `_w` pair when they differ.
        let pair = |name: &str, v: [usize; 2]| {
            let single = if name == "kernel" { "kernel_size" } else { name };
            if v[0] == v[1] { format!(" {single}: {}", v[0]) } else { format!(" {name}_h: {} {name}_w: {}", v[0], v[1]) }
        };
        match &l.kind {
            LayerKind::Convolution { num_output, kernel, stride, pad, dilation, group, bias } => {
                // Caffe pads symmetrically; an asymmetric (TensorFlow "same") pad
                // adds deepsent's `pad_end_h` / `pad_end_w` (padding after: bottom, right).
                let begin = [pad[0].0, pad[1].0];
                let _ = write!(s, "  convolution_param {{ num_output: {num_output}{}{}{}", pair("kernel", *kernel), pair("stride", *stride), pair("pad", begin));
                if pad[0].0 != pad[0].1 || pad[1].0 != pad[1].1 {
                    let _ = write!(s, " pad_end_h: {} pad_end_w: {}", pad[0].1, pad[1].1);
                }
                if *dilation != [1, 1] {
                    let _ = write!(s, " dilation: {} dilation: {}", dilation[0], dilation[1]);
                }
                if *group != 1 {
                    let _ = write!(s, " group: {group}");
                }
                if !bias {
                    let _ = write!(s, " bias_term: false");
                }
                let _ = writeln!(s, " }}");
            }
            LayerKind::InnerProduct { num_output, bias } => {
                let _ = writeln!(s, "  inner_product_param {{ num_output: {num_output}{} }}", if *bias { "" } else { " bias_term: false" });
            }
            LayerKind::ReLU { negative_slope, max } => {
                if *negative_slope != 0.0 {
                    let _ = writeln!(s, "  relu_param {{ negative_slope: {negative_slope} }}");
                }
                match max {
                    Some(m) if *negative_slope == 0.0 => {
                        let _ = writeln!(s, "  clip_param {{ min: 0 max: {m} }}");
                    }
                    // Neither Caffe nor deepsent's reader has a leaky clipped ReLU.
                    Some(m) => {
                        let _ = writeln!(s, "  # deepsent: clipped at {m} (not representable in prototxt)");
                    }
                    None => {}
                }
            }
            LayerKind::Pooling { method, kernel, stride, pad, global, ceil } => {
                let m = match method {
                    PoolMethod::Max => "MAX",
                    PoolMethod::Ave => "AVE",
                };
                if *global {
                    let _ = writeln!(s, "  pooling_param {{ pool: {m} global_pooling: true }}");
                } else {
                    let _ = writeln!(s, "  pooling_param {{ pool: {m}{}{}{}{} }}", pair("kernel", *kernel), pair("stride", *stride), pair("pad", *pad), if *ceil { "" } else { " round_mode: FLOOR" });
                }
            }
            LayerKind::Lrn { local_size, alpha, beta, k } => {
                let _ = writeln!(s, "  lrn_param {{ local_size: {local_size} alpha: {alpha} beta: {beta} k: {k} }}");
            }
            LayerKind::Dropout { ratio } => {
                let _ = writeln!(s, "  dropout_param {{ dropout_ratio: {ratio} }}");
            }
            LayerKind::Concat { axis } => {
                let _ = writeln!(s, "  concat_param {{ axis: {axis} }}");
            }
            LayerKind::BatchNorm { eps } => {
                let _ = writeln!(s, "  batch_norm_param {{ use_global_stats: true eps: {eps} }}");
            }
            LayerKind::Scale { bias } => {
                let _ = writeln!(s, "  scale_param {{ bias_term: {bias} }}");
            }
            LayerKind::Eltwise { coeffs } => {
                let _ = write!(s, "  eltwise_param {{ operation: SUM");
                for c in coeffs {
                    let _ = write!(s, " coeff: {c}");
                }
                let _ = writeln!(s, " }}");
            }
            LayerKind::Softmax | LayerKind::Flatten => {}
        }
        let _ = writeln!(s, "}}");
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::model::caffe::prototxt;
    use crate::model::Arch;

    #[test]
    fn written_specs_read_back_equal() {
        for arch in [Arch::CaffeNet, Arch::SqueezeNet10, Arch::EfficientNetLite0] {
            let spec = arch.spec().unwrap();
            let text = super::to_prototxt(&spec);
            assert_eq!(prototxt::parse(&text, "written").unwrap(), spec, "{}", arch.name());
        }
    }

    #[test]
    fn asymmetric_padding_round_trips() {
        // TensorFlow "same" for a 3×3 stride-2 convolution on an even input: 0 before, 1 after.
        let text = r#"
            name: "tf" input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
            layer { name: "c" type: "Convolution" bottom: "data" top: "c"
                    convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 0 pad_end: 1 } }
        "#;
        let spec = prototxt::parse(text, "tf.prototxt").unwrap();
        match &spec.layers[0].kind {
            crate::model::LayerKind::Convolution { pad, .. } => assert_eq!(*pad, [(0, 1), (0, 1)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(spec.infer_shapes().unwrap().blobs["c"], vec![4, 4, 4], "ceil(8 / 2) as TensorFlow gives");
        let written = super::to_prototxt(&spec);
        assert!(written.contains("pad_end_h: 1 pad_end_w: 1"), "{written}");
        assert_eq!(prototxt::parse(&written, "written").unwrap(), spec);
    }
}
