//! ImageNet-style classification: top-k classes of each image.

use crate::model::net::{rows, Net};
use crate::preprocess::{crops, decode, Preprocess};
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct Class {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub prob: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Classified {
    pub image: String,
    pub top: Vec<Class>,
}

/// Scores of the network's output for each image's centre view (a single
/// view for `Resize::Direct`). Images are decoded in parallel and run in
/// batches of `batch`.
pub fn output_rows(net: &Net, pre: &Preprocess, images: &[PathBuf], batch: usize, max_pixels: u64) -> anyhow::Result<Vec<Vec<f32>>> {
    super::predict::check_finite(net, pre)?;
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        use rayon::prelude::*;
        let views: Vec<Vec<f32>> = chunk
            .par_iter()
            .map(|p| -> anyhow::Result<Vec<f32>> {
                let img = pre.resize_image(&decode::decode_file(p, max_pixels)?);
                let mut v = vec![0.0; pre.view_len()];
                pre.write_view(&img, crops::center(pre.stored_size(), pre.crop), &mut v);
                Ok(v)
            })
            .collect::<anyhow::Result<_>>()?;
        let input = net.input(views.concat(), net.device());
        out.extend(rows(net.predict(input)));
    }
    Ok(out)
}

/// The `k` most probable classes of a probability row.
pub fn top_k(probs: &[f32], k: usize, labels: Option<&[String]>) -> Vec<Class> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.into_iter()
        .take(k)
        .map(|i| Class { index: i, label: labels.map(|l| l[i].clone()), prob: probs[i] })
        .collect()
}
