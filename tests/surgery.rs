//! Surgery on specs: the resulting layers, weights kept bit-equal, new layers
//! initialised as specified, clear errors.

mod common;

use deepsent::model::surgery::{parse_ops, resolve, Patient};
use deepsent::model::{Arch, LayerKind};

fn caffenet() -> Patient {
    let spec = Arch::CaffeNet.spec().unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 3);
    Patient::new(spec, weights)
}

fn names(p: &Patient) -> Vec<&str> {
    p.spec.layers.iter().map(|l| l.name.as_str()).collect()
}

#[test]
fn replace_fc8_keeps_every_other_weight_and_starts_the_head_gaussian() {
    let before = caffenet();
    let after = caffenet().operate(&resolve("caffenet", "ft").unwrap(), 11).unwrap();
    assert_eq!(names(&after), names(&before));
    assert_eq!(after.spec.parameter_count().unwrap(), 60_965_224 - (4096 * 1000 + 1000) + (4096 * 2 + 2));
    for name in ["conv1", "conv5", "fc6", "fc7"] {
        assert_eq!(after.weights.layers[name], before.weights.layers[name], "{name} changed");
    }
    let fc8 = &after.weights.layers["fc8"];
    assert_eq!(fc8[0].shape, vec![2, 4096]);
    assert!(fc8[1].data.iter().all(|&b| b == 0.0));
    let n = fc8[0].data.len() as f64;
    let mean = fc8[0].data.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (fc8[0].data.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 1e-3 && (std - 0.01).abs() < 5e-4, "mean {mean} std {std}");
    let l = after.spec.layer("fc8").unwrap();
    assert_eq!((l.params[0].lr_mult, l.params[1].lr_mult, l.params[1].decay_mult), (10.0, 20.0, 0.0));
    assert_eq!(after.new_layers, ["fc8"]);
}

#[test]
fn cut_append_remove_and_freeze() {
    // fc7-4096: cut after fc7, keeping its in-place ReLU and dropout.
    let cut = caffenet().operate(&parse_ops("cut-after:fc7").unwrap(), 0).unwrap();
    assert_eq!(names(&cut).last(), Some(&"drop7"));
    assert!(cut.spec.layer("fc8").is_none() && !cut.weights.layers.contains_key("fc8"));
    assert_eq!(cut.spec.parameter_count().unwrap(), 60_965_224 - 4_097_000);

    // fc9-2: a new InnerProduct on fc8 (a flat blob).
    let app = caffenet().operate(&parse_ops("append:fc8:fc9:2").unwrap(), 0).unwrap();
    let fc9 = app.spec.layer("fc9").unwrap();
    assert!(matches!(fc9.kind, LayerKind::InnerProduct { num_output: 2, .. }));
    assert_eq!(fc9.bottoms, ["fc8"]);
    assert!(app.spec.layer("prob").is_none(), "what was above fc8 goes");
    assert_eq!(app.spec.parameter_count().unwrap(), 60_965_224 + 1000 * 2 + 2);

    // fc7-2 as the paper's: replace fc7, drop its ReLU and dropout; fc8 goes with it.
    let fc7_2 = caffenet().operate(&parse_ops("replace:fc7:2,remove:relu7,remove:drop7").unwrap(), 0).unwrap();
    assert_eq!(names(&fc7_2).last(), Some(&"fc7"));
    assert_eq!(fc7_2.spec.parameter_count().unwrap(), 60_965_224 - (4096 * 4096 + 4096) - 4_097_000 + (4096 * 2 + 2));

    let frozen = caffenet().operate(&parse_ops("freeze-to:conv5").unwrap(), 0).unwrap();
    assert_eq!(frozen.spec.layer("conv3").unwrap().params[0].lr_mult, 0.0);
    assert_eq!(frozen.spec.layer("fc6").unwrap().params[0].lr_mult, 1.0);
}

#[test]
fn squeezenet_head_on_a_map_is_a_1x1_convolution() {
    let spec = Arch::SqueezeNet10.spec().unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 1);
    let p = Patient::new(spec, weights).operate(&resolve("squeezenet1.0", "ft").unwrap(), 0).unwrap();
    assert!(p.spec.layer("relu_conv_final").is_none());
    assert!(matches!(p.spec.layer("conv_final").unwrap().kind, LayerKind::Convolution { num_output: 2, kernel: [1, 1], .. }));
    assert_eq!(p.spec.infer_shapes().unwrap().blobs["pool_final"], vec![2, 1, 1]);
    let lp = Patient::new(p.spec.clone(), p.weights.clone()).operate(&parse_ops("append:fire9/concat:head:2").unwrap(), 0).unwrap();
    assert!(matches!(lp.spec.layer("head").unwrap().kind, LayerKind::Convolution { kernel: [1, 1], .. }));
}

#[test]
fn invalid_operations_are_clear_errors() {
    let err = caffenet().operate(&parse_ops("replace:fc10:2").unwrap(), 0).unwrap_err().to_string();
    assert!(err.contains("no layer named \"fc10\"") && err.contains("fc8"), "{err}");
    let err = caffenet().operate(&parse_ops("replace:relu7:2").unwrap(), 0).unwrap_err().to_string();
    assert!(err.contains("relu7 is a ReLU layer"), "{err}");
    let err = caffenet().operate(&parse_ops("remove:fc7").unwrap(), 0).unwrap_err().to_string();
    assert!(err.contains("not an in-place layer"), "{err}");
    let err = parse_ops("replace:fc8:zero").unwrap_err().to_string();
    assert!(err.contains("cannot parse surgery \"replace:fc8:zero\""), "{err}");
    for ops in ["replace:fc8:0", "replace:fc8:4000000000", "append:fc8:fc9:2000000000"] {
        let err = parse_ops(ops).unwrap_err().to_string();
        assert!(err.starts_with(&format!("surgery {ops}: ")) && err.contains("outputs: give between 1 and 1048576"), "{err}");
    }
    let err = caffenet().operate(&parse_ops("append:fc8:fc7:2").unwrap(), 0).unwrap_err().to_string();
    assert!(err.contains("a layer named fc7 exists already"), "{err}");
}

/// Learnable parameters of CaffeNet's layers (weights + biases).
const CAFFENET: usize = 60_965_224;
const FC8: usize = 4096 * 1000 + 1000;
const FC7: usize = 4096 * 4096 + 4096;
const FC6: usize = 9216 * 4096 + 4096;

#[test]
fn caffenet_paper_presets_have_the_expected_layers_and_sizes() {
    let cases: [(&str, &str, usize, Option<f64>); 7] = [
        ("ft", "fc8", CAFFENET - FC8 + 4096 * 2 + 2, None),
        ("fc7-4096", "drop7", CAFFENET - FC8, None),
        ("fc6-4096", "drop6", CAFFENET - FC8 - FC7, None),
        ("fc7-2", "fc7", CAFFENET - FC8 - FC7 + 4096 * 2 + 2, None),
        ("fc6-2", "fc6", CAFFENET - FC8 - FC7 - FC6 + 9216 * 2 + 2, Some(1e-4)),
        ("fc8-1000", "fc8", CAFFENET, None),
        ("fc9-2", "fc9", CAFFENET + 1000 * 2 + 2, None),
    ];
    for (name, last, params, lr) in cases {
        let p = caffenet().operate(&resolve("caffenet", name).unwrap(), 0).unwrap();
        // The softmax layer, where kept, reads the logits: look below it.
        let layers: Vec<&str> = names(&p).into_iter().filter(|n| *n != "prob").collect();
        assert_eq!(layers.last(), Some(&last), "{name}: {layers:?}");
        assert_eq!(p.spec.parameter_count().unwrap(), params, "{name}");
        let preset = deepsent::model::surgery::find_preset("caffenet", name).unwrap();
        assert_eq!(preset.base_lr, lr, "{name}");
        // New layers get lr ×10; nothing new, nothing faster.
        let fast = p.spec.layers.iter().filter(|l| l.params.first().is_some_and(|m| m.lr_mult == 10.0)).count();
        assert_eq!(fast, p.new_layers.len(), "{name}");
        let logits = p.spec.logits_blob().to_string();
        let classes = p.spec.infer_shapes().unwrap().blobs[&logits][0];
        let expected = match name {
            "fc7-4096" | "fc6-4096" => 4096,
            "fc8-1000" => 1000,
            _ => 2,
        };
        assert_eq!(classes, expected, "{name}: softmax width");
    }
}

#[test]
fn squeezenet_analogues_build_with_the_expected_heads() {
    let spec = Arch::SqueezeNet10.spec().unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 1);
    let total = 1_248_424;
    let conv10 = 512 * 1000 + 1000;
    let fire9 = (512 * 64 + 64) + (64 * 256 + 256) + (64 * 9 * 256 + 256);
    let fire8 = (384 * 64 + 64) + (64 * 256 + 256) + (64 * 9 * 256 + 256);
    let cases: [(&str, usize, usize); 5] = [
        ("conv10-1000", 1000, total),
        ("fire9-512", 512, total - conv10),
        ("fire8-512", 512, total - conv10 - fire9),
        ("fire9-2", 2, total - conv10 - fire9 + 512 * 2 + 2),
        ("fire8-2", 2, total - conv10 - fire9 - fire8 + 384 * 2 + 2),
    ];
    for (name, classes, params) in cases {
        let p = Patient::new(spec.clone(), weights.clone()).operate(&resolve("squeezenet1.0", name).unwrap(), 0).unwrap();
        let logits = p.spec.logits_blob().to_string();
        assert_eq!(p.spec.infer_shapes().unwrap().blobs[&logits], vec![classes, 1, 1], "{name}");
        assert_eq!(p.spec.parameter_count().unwrap(), params, "{name}");
        assert!(p.spec.layer("drop9").is_none(), "{name}: drop9 stays out");
        assert_eq!(p.spec.layer("fire4/conv3x3_2").unwrap().params[0].lr_mult, 0.0, "{name}: conv1…fire4 frozen");
    }
}

/// A reader that stops early ends the listing quietly: no panic on the broken pipe.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::process::Stdio;
    let mut child = common::deepsent().args(["surgery", "--arch", "caffenet", "--list"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The reading end closes before the listing is written.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
