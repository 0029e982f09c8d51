//! How far fine-tuning moved each layer: the relative L2 change of its
//! weights, ‖w − w₀‖ / ‖w₀‖ over all its blobs. A network whose pretrained
//! layers did not move is its starting point, whatever the run is called.

use crate::model::{NetSpec, Weights};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerMovement {
    pub layer: String,
    /// New to the network (surgery): measured from its own start (e.g. the probe).
    pub new: bool,
    /// ‖w − w₀‖ / ‖w₀‖ (‖w − w₀‖ where ‖w₀‖ = 0).
    pub relative_change: f64,
}

/// The layers of `spec` that have weights in both, in network order.
pub fn movement(spec: &NetSpec, start: &Weights, end: &Weights, new_layers: &[String]) -> Vec<LayerMovement> {
    spec.layers
        .iter()
        .filter_map(|l| {
            let (a, b) = (start.layers.get(&l.name)?, end.layers.get(&l.name)?);
            let (mut diff, mut norm) = (0.0f64, 0.0f64);
            for (x, y) in a.iter().zip(b) {
                for (&u, &v) in x.data.iter().zip(&y.data) {
                    diff += (v as f64 - u as f64).powi(2);
                    norm += (u as f64).powi(2);
                }
            }
            let relative_change = if norm > 0.0 { (diff / norm).sqrt() } else { diff.sqrt() };
            Some(LayerMovement { layer: l.name.clone(), new: new_layers.contains(&l.name), relative_change })
        })
        .collect()
}

/// The largest relative change among pretrained (not new) layers; None if there are none.
pub fn largest_pretrained(m: &[LayerMovement]) -> Option<f64> {
    m.iter().filter(|l| !l.new).map(|l| l.relative_change).fold(None, |acc, c| Some(acc.map_or(c, |a: f64| a.max(c))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Blob;

    #[test]
    fn relative_change_by_hand() {
        let spec = crate::model::caffe::prototxt::parse(
            r#"input: "data" input_dim: 1 input_dim: 2 input_dim: 1 input_dim: 1
            layer { name: "a" type: "InnerProduct" bottom: "data" top: "a" inner_product_param { num_output: 1 } }
            layer { name: "b" type: "InnerProduct" bottom: "a" top: "b" inner_product_param { num_output: 1 } }"#,
            "t",
        )
        .unwrap();
        let w = |a: Vec<f32>, b: Vec<f32>| {
            let mut w = Weights::default();
            w.layers.insert("a".into(), vec![Blob::new(vec![1, 2], a), Blob::new(vec![1], vec![0.0])]);
            w.layers.insert("b".into(), vec![Blob::new(vec![1, 1], b), Blob::new(vec![1], vec![0.0])]);
            w
        };
        // a: (3, 4) → (3, 4.5): ‖Δ‖ = 0.5, ‖w₀‖ = 5 → 0.1. b: 0 → 2 (no start norm): 2.
        let m = movement(&spec, &w(vec![3.0, 4.0], vec![0.0]), &w(vec![3.0, 4.5], vec![2.0]), &["b".into()]);
        assert_eq!(m.len(), 2);
        assert!((m[0].relative_change - 0.1).abs() < 1e-12 && !m[0].new);
        assert!((m[1].relative_change - 2.0).abs() < 1e-12 && m[1].new);
        assert_eq!(largest_pretrained(&m), Some(m[0].relative_change));
    }
}
