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
/// averaged over the views. At most `batch` views go through the network at
/// once, whatever the number of views per image: 10-crop scoring holds no more
/// memory than centre-crop scoring, and an image's views may straddle passes.
pub fn probabilities(net: &Net, pre: &Preprocess, images: &[&RgbImage], views: Views, batch: usize) -> Vec<Vec<f32>> {
    let logits_name = net.spec.logits_blob().to_string();
    let cs = views.crops(pre);
    let per_image = cs.len();
    let total = images.len() * per_image;
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); images.len()];
    for start in (0..total).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(total);
        let mut data = vec![0.0f32; (end - start) * pre.view_len()];
        for (slot, view) in data.chunks_mut(pre.view_len()).enumerate() {
            let j = start + slot;
            pre.write_view(images[j / per_image], cs[j % per_image], view);
        }
        let input = net.input(data, net.device());
        let logits = net.blobs(input, &[logits_name.as_str()]).expect("logits blob exists").remove(&logits_name).unwrap();
        let [n, k, _, _] = logits.dims();
        let probs = to_f32s(&softmax(logits.reshape([n, k]), 1));
        // Views are added in order, so the mean is the same however they were batched.
        for (slot, row) in probs.chunks(k).enumerate() {
            let mean = &mut out[(start + slot) / per_image];
            if mean.is_empty() {
                *mean = vec![0.0; k];
            }
            for (m, p) in mean.iter_mut().zip(row) {
                *m += p / per_image as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::caffe::prototxt;
    use crate::model::init::random_weights;

    #[test]
    fn ten_crop_scores_do_not_depend_on_the_batch() {
        let spec = prototxt::parse(
            r#"input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 2 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }"#,
            "tiny",
        )
        .unwrap();
        let net = Net::new(spec.clone(), &random_weights(&spec, 5), &crate::model::device::cpu()).unwrap();
        let pre = Preprocess::caffe(8);
        let stored: Vec<RgbImage> = (0..3u8).map(|i| RgbImage::from_fn(pre.stored_size() as u32, pre.stored_size() as u32, |x, y| image::Rgb([x as u8 * 9 + i, y as u8 * 7, 200 - i * 40]))).collect();
        let images: Vec<&RgbImage> = stored.iter().collect();
        let whole = probabilities(&net, &pre, &images, Views::TenCrop, 30);
        assert_eq!(whole.len(), 3);
        for batch in [1, 3, 7, 32] {
            assert_eq!(probabilities(&net, &pre, &images, Views::TenCrop, batch), whole, "batch {batch}");
        }
        // The mean of the 10 views differs from the centre crop alone (the views differ).
        assert_ne!(probabilities(&net, &pre, &images, Views::Center, 2), whole);
    }
}
