//! Test-time scoring: class probabilities of each image from the centre crop
//! or averaged over Caffe's 10 oversampled views.

use crate::model::net::{to_f32s, Net};
use crate::preprocess::{crops, Crop, Preprocess};
use burn::tensor::activation::softmax;
use image::RgbImage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Views {
    Center,
    TenCrop,
}

impl Views {
    pub fn crops(self, pre: &Preprocess) -> Vec<Crop> {
        match self {
            Views::Center => vec![crops::center(pre.stored_size(), pre.crop)],
            Views::TenCrop => crops::ten(pre.stored_size(), pre.crop).to_vec(),
        }
    }
}

/// Softmax probabilities per image (over the logits blob's K outputs),
/// averaged over the views; `batch` images per forward pass.
pub fn probabilities(net: &Net, pre: &Preprocess, images: &[&RgbImage], views: Views, batch: usize) -> Vec<Vec<f32>> {
    let logits_name = crate::train::fit::logits_blob(&net.spec);
    let cs = views.crops(pre);
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let mut data = vec![0.0f32; chunk.len() * cs.len() * pre.view_len()];
        for (slot, view) in data.chunks_mut(pre.view_len()).enumerate() {
            pre.write_view(chunk[slot / cs.len()], cs[slot % cs.len()], view);
        }
        let input = net.input(data, net.device());
        let logits = net.blobs(input, &[logits_name.as_str()]).expect("logits blob exists").remove(&logits_name).unwrap();
        let [n, k, _, _] = logits.dims();
        let probs = to_f32s(&softmax(logits.reshape([n, k]), 1));
        for img in 0..chunk.len() {
            let mut mean = vec![0.0f32; k];
            for v in 0..cs.len() {
                let row = &probs[(img * cs.len() + v) * k..(img * cs.len() + v + 1) * k];
                for (m, p) in mean.iter_mut().zip(row) {
                    *m += p / cs.len() as f32;
                }
            }
            out.push(mean);
        }
    }
    out
}
