//! Sentiment of new images with a fine-tuned model: the same preprocessing
//! and scoring as cross-validation (warp, centre crop or Caffe's 10 crops,
//! softmax), so a fold's model gives here the accuracy `crossval` reported.

use crate::eval::maps::{image_map, ImageMap, Mapper};
use crate::eval::metrics::{positive_probability, predicted};
use crate::eval::scoring::{probabilities, Views};
use crate::model::saved::{ModelCard, SavedModel};
use crate::model::Net;
use crate::preprocess::Preprocess;
use anyhow::{bail, Result};
use image::RgbImage;
use serde::Serialize;

/// One image's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// P(positive) from the centre crop (calibrated, for a calibrated model).
    pub positive: f32,
    /// P(positive) averaged over the 10 oversampled views (with oversampling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_10crop: Option<f32>,
    /// "positive" or "negative": from the 10 views when oversampling, else the centre crop.
    pub label: &'static str,
}

/// A loaded model, ready to score images.
pub struct Predictor {
    pub net: Net,
    pub preprocess: Preprocess,
    pub card: ModelCard,
    pub spec_name: String,
}

impl Predictor {
    pub fn new(model: SavedModel, device: &burn::prelude::Device) -> Result<Predictor> {
        let logits = model.spec.logits_blob().to_string();
        let classes = model.spec.infer_shapes()?.blobs[&logits][0];
        if classes < 2 {
            bail!("the model has {classes} output(s); a sentiment model needs outputs 0 (negative) and 1 (positive)");
        }
        let spec_name = model.spec.name.clone();
        let net = Net::new(model.spec, &model.weights, device)?;
        check_finite(&net, &model.preprocess)?;
        Ok(Predictor { net, preprocess: model.preprocess, card: model.card, spec_name })
    }

    /// A decoded image resized as the model stores its inputs (e.g. 256×256).
    pub fn prepare(&self, image: &RgbImage) -> RgbImage {
        self.preprocess.resize_image(image)
    }

    /// Scores prepared images, `batch` per forward pass. A score that is not
    /// a number is an error naming the layer where it arose, not an answer.
    pub fn predict(&self, prepared: &[&RgbImage], oversample: bool, batch: usize) -> Result<Vec<Prediction>> {
        let center = probabilities(&self.net, &self.preprocess, prepared, Views::Center, batch);
        let ten = oversample.then(|| probabilities(&self.net, &self.preprocess, prepared, Views::TenCrop, batch));
        let scores = center.iter().chain(ten.iter().flatten());
        if let Some(i) = scores.clone().position(|p| p.iter().any(|v| !v.is_finite())) {
            let image = prepared[i % prepared.len().max(1)];
            let mut view = vec![0.0; self.preprocess.view_len()];
            self.preprocess.write_view(image, crate::preprocess::crops::center(self.preprocess.stored_size(), self.preprocess.crop), &mut view);
            let layer = self.net.first_non_finite(self.net.input(view, self.net.device())).unwrap_or_else(|| "the softmax".into());
            bail!("the model's output is not a number (NaN or infinite), first at layer {layer}: its weights overflow on this image");
        }
        let calibration = self.card.calibration.as_ref();
        let score = |p: &[f32]| calibration.map_or(positive_probability(p), |cal| cal.apply(positive_probability(p) as f64) as f32);
        Ok(center
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let decisive = ten.as_ref().map_or(c, |t| &t[i]);
                let positive = match calibration {
                    // A calibrated model answers on its calibrated score and threshold.
                    Some(cal) => cal.is_positive(cal.apply(positive_probability(decisive) as f64)),
                    None => predicted(decisive) == 1,
                };
                Prediction { positive: score(c), positive_10crop: ten.as_ref().map(|t| score(&t[i])), label: if positive { "positive" } else { "negative" } }
            })
            .collect())
    }
}

impl Predictor {
    /// The answer for one prepared image and its sentiment map (centre crop,
    /// or the 10 views), from `mapper` (made once on this predictor's net).
    pub fn explain(&self, mapper: &Mapper, prepared: &RgbImage, oversample: bool) -> Result<(Prediction, ImageMap)> {
        let prediction = self.predict(&[prepared], oversample, 10)?.remove(0);
        let views = if oversample { Views::TenCrop } else { Views::Center };
        Ok((prediction, image_map(mapper, &self.preprocess, prepared, views)))
    }
}

/// Runs a synthetic image (colour gradients) through every layer: an error
/// naming the first layer whose output is not a number. Finite weights can
/// still overflow (a flipped exponent bit), and a ReLU or max pooling after
/// them turns NaN into ordinary numbers: the final scores alone would look
/// fine and be wrong.
pub fn check_finite(net: &Net, pre: &Preprocess) -> Result<()> {
    let side = pre.stored_size() as u32;
    let gradient = RgbImage::from_fn(side, side, |x, y| image::Rgb([(x * 255 / side) as u8, (y * 255 / side) as u8, ((x + y) * 127 / side) as u8]));
    let mut view = vec![0.0; pre.view_len()];
    pre.write_view(&gradient, crate::preprocess::crops::center(pre.stored_size(), pre.crop), &mut view);
    if let Some(layer) = net.first_non_finite(net.input(view, net.device())) {
        bail!("layer {layer} outputs NaN or infinity on a test image: its weights (or those before it) overflow; the model file is corrupt or was not trained to convergence");
    }
    Ok(())
}
