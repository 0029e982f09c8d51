//! Layer activations as probe inputs, reduced to Gram matrices.
//!
//! A linear probe needs only the inner products of the images' features (see
//! `linear/mod.rs`), so each layer is reduced to K = X Xᵀ over the images
//! (n × n, f64) as soon as its features are extracted. The features
//! themselves (SqueezeNet's conv1: 96×111×111 = 1.18 M values per image, 4.2
//! GB for 880 images) live only while their pass runs: layers are grouped
//! into passes whose features fit a memory budget, and each pass runs the
//! network only up to its deepest layer.
//!
//! Features are held in column blocks (all images × `BLOCK` dimensions), so
//! each block is one contiguous matrix for the GEMM and is freed right after.

use super::npy;
use crate::model::net::{to_f32s, Net};
use crate::preprocess::{crops, Preprocess};
use crate::progress;
use anyhow::{Context, Result};
use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use nalgebra::DMatrix;
use std::path::Path;

/// Feature dimensions per block: 880 images × 8,192 × 4 bytes = 29 MB.
const BLOCK: usize = 8192;

/// One layer's Gram matrix over the images, in their given order.
#[derive(Debug, Clone)]
pub struct LayerGram {
    pub blob: String,
    /// Flattened feature length (C × H × W).
    pub dims: usize,
    pub gram: DMatrix<f64>,
}

#[derive(Debug, Clone)]
pub struct FeatureOptions<'a> {
    /// Images per forward pass.
    pub batch: usize,
    /// Bytes of features held at once (one layer larger than this still runs, alone).
    pub memory_bytes: usize,
    /// Also write each layer's features as `DIR/<blob>.npy` (rows = images).
    pub export: Option<&'a Path>,
}

/// Centre-crop features of `images` at each of `blobs`, as Gram matrices (in
/// the order of `blobs`).
pub fn layer_grams(net: &Net, pre: &Preprocess, images: &[&RgbImage], blobs: &[String], options: &FeatureOptions) -> Result<Vec<LayerGram>> {
    let shapes = net.spec.infer_shapes()?;
    let dims: Vec<usize> = blobs
        .iter()
        .map(|b| shapes.blobs.get(b).map(|s| s.iter().product()).with_context(|| format!("the network has no blob {b:?}")))
        .collect::<Result<_>>()?;
    let n = images.len();
    let passes = group_by_budget(&dims, n, options.memory_bytes);
    let bar = progress::bar((n * passes.len()) as u64, "layer features");
    let mut grams: Vec<Option<LayerGram>> = vec![None; blobs.len()];
    for (p, pass) in passes.iter().enumerate() {
        bar.set_message(format!("features, pass {}/{}", p + 1, passes.len()));
        let wanted: Vec<&str> = pass.iter().map(|&l| blobs[l].as_str()).collect();
        let mut stores: Vec<Blocks> = pass.iter().map(|&l| Blocks::new(n, dims[l])).collect();
        let center = crops::center(pre.stored_size(), pre.crop);
        let mut row = 0;
        for chunk in images.chunks(options.batch.max(1)) {
            let mut data = vec![0.0f32; chunk.len() * pre.view_len()];
            for (img, view) in chunk.iter().zip(data.chunks_mut(pre.view_len())) {
                pre.write_view(img, center, view);
            }
            let mut out = net.blobs(net.input(data, net.device()), &wanted)?;
            for (store, name) in stores.iter_mut().zip(&wanted) {
                let values = to_f32s(&out.remove(*name).expect("wanted blobs are returned"));
                store.put_rows(row, &values);
            }
            row += chunk.len();
            bar.inc(chunk.len() as u64);
        }
        for (store, &l) in stores.into_iter().zip(pass) {
            if let Some(dir) = options.export {
                let path = dir.join(format!("{}.npy", file_stem(&blobs[l])));
                store.write_npy(&path).with_context(|| format!("writing {}", path.display()))?;
            }
            grams[l] = Some(LayerGram { blob: blobs[l].clone(), dims: dims[l], gram: store.into_gram(net.device()) });
        }
    }
    bar.finish_and_clear();
    Ok(grams.into_iter().map(|g| g.expect("every layer is in one pass")).collect())
}

/// A blob name as a file name (`fire2/concat` → `fire2_concat`).
pub fn file_stem(blob: &str) -> String {
    blob.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// Consecutive layers packed into passes of at most `budget` bytes of features.
fn group_by_budget(dims: &[usize], images: usize, budget: usize) -> Vec<Vec<usize>> {
    let mut passes: Vec<Vec<usize>> = Vec::new();
    let mut used = usize::MAX;
    for (l, &d) in dims.iter().enumerate() {
        let bytes = d * images * 4;
        if used.saturating_add(bytes) > budget {
            passes.push(Vec::new());
            used = 0;
        }
        passes.last_mut().expect("a pass was opened").push(l);
        used += bytes;
    }
    passes
}

/// Features of all images in column blocks: block k holds dimensions
/// k·BLOCK … of every image, row-major (image × dimension).
struct Blocks {
    images: usize,
    dims: usize,
    blocks: Vec<Vec<f32>>,
}

impl Blocks {
    fn new(images: usize, dims: usize) -> Blocks {
        let blocks = (0..dims.div_ceil(BLOCK)).map(|k| vec![0.0f32; images * Self::width_of(dims, k)]).collect();
        Blocks { images, dims, blocks }
    }

    fn width_of(dims: usize, block: usize) -> usize {
        BLOCK.min(dims - block * BLOCK)
    }

    /// Stores consecutive images' flattened features starting at image `first`.
    fn put_rows(&mut self, first: usize, values: &[f32]) {
        for (i, features) in values.chunks(self.dims).enumerate() {
            for (k, block) in self.blocks.iter_mut().enumerate() {
                let w = Self::width_of(self.dims, k);
                block[(first + i) * w..(first + i + 1) * w].copy_from_slice(&features[k * BLOCK..k * BLOCK + w]);
            }
        }
    }

    /// K = Σ over blocks of B Bᵀ: each block product in f32 on the tensor
    /// engine (a fast GEMM), summed in f64.
    fn into_gram(self, device: &burn::prelude::Device) -> DMatrix<f64> {
        let n = self.images;
        let mut gram = DMatrix::<f64>::zeros(n, n);
        for (k, block) in self.blocks.into_iter().enumerate() {
            let w = Self::width_of(self.dims, k);
            let b: Tensor<2> = Tensor::from_data(TensorData::new(block, [n, w]), device);
            let product = to_f32s(&b.clone().matmul(b.transpose()));
            for (g, p) in gram.iter_mut().zip(&product) {
                *g += *p as f64;
            }
        }
        // Symmetric by construction; the f32 products may differ in the last bit.
        (&gram + gram.transpose()) * 0.5
    }

    fn write_npy(&self, path: &Path) -> std::io::Result<()> {
        let mut writer = npy::Writer::<f32>::create(path, &[self.images, self.dims])?;
        for i in 0..self.images {
            for (k, block) in self.blocks.iter().enumerate() {
                let w = Self::width_of(self.dims, k);
                writer.write(&block[i * w..(i + 1) * w])?;
            }
        }
        writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_respect_the_budget_and_keep_order() {
        // 10 images: layers of 40, 40, 400, 8 bytes per image… budget 1000 bytes.
        let passes = group_by_budget(&[10, 10, 100, 2], 10, 1000);
        assert_eq!(passes, vec![vec![0, 1], vec![2], vec![3]]);
        let one = group_by_budget(&[10, 10, 2], 10, 1 << 20);
        assert_eq!(one, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn block_gram_equals_the_direct_product() {
        let (n, d) = (5, BLOCK + 37);
        let values: Vec<f32> = (0..n * d).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
        let mut blocks = Blocks::new(n, d);
        blocks.put_rows(0, &values[..2 * d]);
        blocks.put_rows(2, &values[2 * d..]);
        let gram = blocks.into_gram(&crate::model::device::cpu());
        for i in 0..n {
            for j in 0..n {
                let direct: f64 = (0..d).map(|k| values[i * d + k] as f64 * values[j * d + k] as f64).sum();
                assert!((gram[(i, j)] - direct).abs() <= 1e-6 * direct.abs().max(1.0), "({i},{j}): {} vs {direct}", gram[(i, j)]);
            }
        }
    }
}
