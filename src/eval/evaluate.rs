//! A trained model on a labelled image set: every image scored (centre crop,
//! and with oversampling the 10-crop average), then the metrics of
//! [`super::binary_metrics`] with bootstrap intervals, per view, on the raw
//! scores or through a [`Calibration`] (the model's own, or one fitted here
//! on other labelled images).

use super::binary_metrics::{binary_metrics, bootstrap, BinaryMetrics, Interval};
use super::metrics::positive_probability;
use super::scoring::{probabilities, Views};
use crate::data::Item;
use crate::model::calibration::Calibration;
use crate::model::Net;
use crate::preprocess::decode::decode_file;
use crate::preprocess::{Preprocess, DEFAULT_MAX_PIXELS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bootstrap resamples of the intervals, and their seed (the same images give the same intervals).
pub const RESAMPLES: usize = 1000;
pub const SEED: u64 = 0;

/// The metrics of one way of scoring (centre crop or 10-crop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewMetrics {
    #[serde(flatten)]
    pub metrics: BinaryMetrics,
    /// 95 % bootstrap interval of each scalar metric, by name.
    pub interval: BTreeMap<String, Interval>,
}

/// One image's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub name: String,
    pub label: usize,
    pub positive: f64,
    pub positive_10crop: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub center: ViewMetrics,
    pub ten_crop: Option<ViewMetrics>,
    /// What the scores went through before being measured (the model's own
    /// calibration, or one just fitted); absent: the network's raw scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Each image's score, as the model answers (calibrated when it is).
    pub images: Vec<Scored>,
}

/// Scores every item with the network alone (`batch` views per forward
/// pass; with `oversample` the 10-crop average too). An image that cannot be
/// decoded is an error naming it: a metric over the images that happened to
/// load would not be the set's.
pub fn score_items(net: &Net, pre: &Preprocess, items: &[Item], oversample: bool, batch: usize) -> anyhow::Result<Vec<Scored>> {
    let bar = crate::progress::bar_or_lines(items.len() as u64, "evaluating");
    let mut images = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1) * 4) {
        use rayon::prelude::*;
        let decoded: Vec<image::RgbImage> = chunk.par_iter().map(|item| decode_file(&item.path, DEFAULT_MAX_PIXELS).map(|img| pre.resize_image(&img))).collect::<Result<_, _>>()?;
        let refs: Vec<&image::RgbImage> = decoded.iter().collect();
        let positive = |probs: Vec<Vec<f32>>| probs.iter().map(|p| positive_probability(p) as f64).collect::<Vec<f64>>();
        let center = positive(probabilities(net, pre, &refs, Views::Center, batch));
        let ten = oversample.then(|| positive(probabilities(net, pre, &refs, Views::TenCrop, batch)));
        for (i, item) in chunk.iter().enumerate() {
            images.push(Scored { name: item.name.clone(), label: item.label.index(), positive: center[i], positive_10crop: ten.as_ref().map(|t| t[i]) });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(images)
}

/// The metrics of raw scores, after `calibration` when given (scores mapped
/// through it, answers at its threshold).
pub fn measure(raw: &[Scored], calibration: Option<&Calibration>) -> Evaluation {
    let map = |p: f64| calibration.map_or(p, |c| c.apply(p));
    let images: Vec<Scored> = raw.iter().map(|s| Scored { positive: map(s.positive), positive_10crop: s.positive_10crop.map(map), ..s.clone() }).collect();
    let threshold = calibration.map_or(0.5, |c| c.threshold);
    let labels: Vec<usize> = images.iter().map(|s| s.label).collect();
    let view = |scores: Vec<f64>| ViewMetrics {
        interval: bootstrap(&scores, &labels, threshold, RESAMPLES, SEED).into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        metrics: binary_metrics(&scores, &labels, threshold),
    };
    let center = view(images.iter().map(|s| s.positive).collect());
    let ten: Option<Vec<f64>> = images.iter().map(|s| s.positive_10crop).collect();
    let ten_crop = ten.filter(|t| !t.is_empty()).map(view);
    Evaluation { center, ten_crop, calibration: calibration.cloned(), images }
}

/// Fits a calibration on labelled images' raw scores (the 10-crop when
/// scored, else the centre crop: the view that decides): a temperature, then
/// the prior `shift` (0 for none), then the threshold of best balanced accuracy.
pub fn fit(raw: &[Scored], shift: f64, fitted: String) -> Calibration {
    let decisive: Vec<f64> = raw.iter().map(|s| s.positive_10crop.unwrap_or(s.positive)).collect();
    let labels: Vec<usize> = raw.iter().map(|s| s.label).collect();
    let temperature = super::calibration::fit_temperature(&decisive, &labels);
    let mut cal = Calibration { temperature, shift, threshold: 0.5, fitted };
    let calibrated: Vec<f64> = decisive.iter().map(|&p| cal.apply(p)).collect();
    cal.threshold = super::calibration::fit_threshold(&calibrated, &labels);
    cal
}
