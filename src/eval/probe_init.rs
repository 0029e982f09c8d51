//! Starting a new 2-output head from the best linear classifier on the
//! frozen pretrained features ("linear probing, then fine-tuning"): the head
//! begins where a probe ends, instead of at random, so fine-tuning starts
//! from the probe's accuracy and the large, un-normalised features of nets
//! like SqueezeNet do not throw the first updates off.

use super::linear::{fit, select_c, CSearch, Classifier, Embedding};
use crate::model::net::{to_f32s, Net};
use crate::model::{LayerKind, PoolMethod};
use crate::preprocess::{crops, Preprocess};
use anyhow::{bail, Context, Result};
use image::RgbImage;
use nalgebra::{DMatrix, DVector};

/// What the probe found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProbeInit {
    pub layer: String,
    pub c: f64,
    /// Inner cross-validation accuracy on the training part at that C.
    pub inner_accuracy: f64,
}

/// Sets the weights of `head` (a new 2-output InnerProduct, or a 1×1
/// Convolution followed only by dropout and a global average pool) to the
/// logistic regression on its input, fitted on the training images (centre
/// crop) with C chosen by inner cross-validation on them.
pub fn init_head_from_probe(net: &mut Net, head: &str, pre: &Preprocess, images: &[&RgbImage], labels: &[usize], batch: usize) -> Result<ProbeInit> {
    let idx = net.spec.layer_index(head)?;
    let layer = net.spec.layers[idx].clone();
    let shapes = net.spec.infer_shapes()?;
    let is_conv = match layer.kind {
        LayerKind::InnerProduct { num_output: 2, .. } => false,
        LayerKind::Convolution { num_output: 2, kernel: [1, 1], stride: [1, 1], group: 1, .. } => true,
        _ => bail!("{head}: probe initialisation needs a new 2-output InnerProduct or 1×1 Convolution"),
    };
    // What follows the head must be linear per image: dropout (off at test), global average, softmax.
    for l in &net.spec.layers[idx + 1..] {
        let ok = match &l.kind {
            LayerKind::Dropout { .. } | LayerKind::Softmax | LayerKind::Flatten => true,
            LayerKind::Pooling { method: PoolMethod::Ave, global: true, .. } => is_conv,
            _ => false,
        };
        if !ok {
            bail!("{head}: layer {} ({}) after the head is not linear; probe initialisation needs the head to feed the loss directly (remove it, e.g. remove:{})", l.name, l.kind.type_name(), l.name);
        }
    }
    let bottom = layer.bottoms[0].clone();
    let out = &shapes.blobs[&layer.tops[0]];
    let positions_out = if is_conv { (out[1] * out[2]) as f64 } else { 1.0 };

    // Features: the input blob, flattened (InnerProduct), or summed over
    // positions / output positions (1×1 conv + global mean, padding included).
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(images.len());
    let c = crops::center(pre.stored_size(), pre.crop);
    for chunk in images.chunks(batch.max(1)) {
        let mut data = vec![0.0f32; chunk.len() * pre.view_len()];
        for (img, view) in chunk.iter().zip(data.chunks_mut(pre.view_len())) {
            pre.write_view(img, c, view);
        }
        let input = net.input(data, net.device());
        let blob = net.blobs(input, &[bottom.as_str()])?.remove(&bottom).context("head input")?;
        let [n, ch, h, w] = blob.dims();
        let v = to_f32s(&blob);
        for i in 0..n {
            let x = &v[i * ch * h * w..(i + 1) * ch * h * w];
            rows.push(if is_conv {
                (0..ch).map(|k| x[k * h * w..(k + 1) * h * w].iter().map(|&a| a as f64).sum::<f64>() / positions_out).collect()
            } else {
                x.iter().map(|&a| a as f64).collect()
            });
        }
    }
    let d = rows[0].len();
    let phi = DMatrix::from_fn(rows.len(), d, |i, j| rows[i][j]);
    let gram = &phi * phi.transpose();
    let emb = Embedding::new(&gram);
    let y: Vec<f64> = labels.iter().map(|&l| if l == 1 { 1.0 } else { -1.0 }).collect();
    let search = CSearch::default();
    let (c_best, inner) = select_c(Classifier::Softmax, &emb.train, &y, &search);
    let model = fit(Classifier::Softmax, &emb.train, &y, c_best);
    // Back to feature space: w = Φᵀ (P w_z), with P the embedding's projection.
    let beta: DVector<f64> = emb.embed(&DMatrix::identity(rows.len(), rows.len())) * &model.w;
    let w = phi.transpose() * beta;
    // Two logits whose difference is w·φ + b.
    let mut weights: Vec<f32> = w.iter().map(|&v| (-v / 2.0) as f32).collect();
    weights.extend(w.iter().map(|&v| (v / 2.0) as f32));
    let bias = vec![(-model.b / 2.0) as f32, (model.b / 2.0) as f32];
    let device = net.device().clone();
    net.params[idx][0] = burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(weights, [2 * d]), &device);
    net.params[idx][1] = burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(bias, [2]), &device);
    Ok(ProbeInit { layer: bottom, c: c_best, inner_accuracy: inner })
}
