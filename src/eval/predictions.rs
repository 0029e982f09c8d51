//! Out-of-fold predictions: every test image of a fold with its label and
//! the positive-class probability of the fold's model (centre crop and
//! 10-crop), kept as `RUN/foldK/predictions.csv` for confusion matrices and
//! the report's sample predictions.

use super::scoring::{probabilities, Views};
use crate::data::{Dataset, Fold};
use crate::model::saved::SavedModel;
use crate::model::Net;
use crate::preprocess::ImageCache;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The name the dataset's lists use.
    pub image: String,
    pub path: PathBuf,
    /// 1 positive, 0 negative.
    pub label: usize,
    pub p_positive_center: f32,
    pub p_positive_oversample: f32,
}


/// The rows of one fold from its two sets of class probabilities.
pub fn rows(dataset: &Dataset, fold: &Fold, center: &[Vec<f32>], oversample: &[Vec<f32>]) -> Vec<Prediction> {
    fold.test
        .iter()
        .zip(center.iter().zip(oversample))
        .map(|(&i, (c, o))| {
            let item = &dataset.items[i];
            Prediction { image: item.name.clone(), path: item.path.clone(), label: item.label.index(), p_positive_center: c[1], p_positive_oversample: o[1] }
        })
        .collect()
}

pub fn write(path: &Path, rows: &[Prediction]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    Ok(())
}

pub fn read(path: &Path) -> Result<Vec<Prediction>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    r.deserialize().enumerate().map(|(i, row)| row.with_context(|| format!("{}:{}: bad prediction row", path.display(), i + 2))).collect()
}

/// The predictions of every fold of a finished run, computing (from the
/// fold's saved model) those of runs made before predictions were kept.
pub fn of_run(run: &Path, folds: &[usize], dataset: &Dataset, cache: &ImageCache, batch: usize, device: &burn::prelude::Device) -> Result<Vec<Prediction>> {
    let mut all = Vec::new();
    for &k in folds {
        let dir = super::run_dir::RunDir::new(run).fold(k);
        let path = dir.predictions();
        if !path.exists() {
            let fold = dataset.fold(k).with_context(|| format!("{} has no fold {k}", dataset.name))?;
            let model = SavedModel::load(&dir.model())?;
            let net = Net::new(model.spec.clone(), &model.weights, device)?;
            let images: Vec<_> = fold.test.iter().map(|&i| &cache.images[i]).collect();
            let center = probabilities(&net, &model.preprocess, &images, Views::Center, batch);
            let oversample = probabilities(&net, &model.preprocess, &images, Views::TenCrop, batch);
            write(&path, &rows(dataset, fold, &center, &oversample))?;
        }
        all.extend(read(&path)?);
    }
    Ok(all)
}

/// 2×2 counts: `[true label][predicted]`, 0 negative, 1 positive.
pub fn confusion(rows: &[Prediction], oversample: bool) -> [[usize; 2]; 2] {
    let mut m = [[0; 2]; 2];
    for r in rows {
        let p = if oversample { r.p_positive_oversample } else { r.p_positive_center };
        m[r.label][usize::from(p > 0.5)] += 1;
    }
    m
}

/// Accuracy of always answering the more frequent label: what a collapsed
/// model scores, the floor every table should be read against.
pub fn majority_baseline(rows: &[Prediction]) -> f64 {
    let positive = rows.iter().filter(|r| r.label == 1).count();
    positive.max(rows.len() - positive) as f64 / rows.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: usize, p: f32) -> Prediction {
        Prediction { image: "x".into(), path: "x".into(), label, p_positive_center: p, p_positive_oversample: 1.0 - p }
    }

    #[test]
    fn confusion_counts_by_hand() {
        let rows = [row(1, 0.9), row(1, 0.2), row(0, 0.4), row(0, 0.7), row(0, 0.1)];
        assert_eq!(confusion(&rows, false), [[2, 1], [1, 1]]);
        assert_eq!(confusion(&rows, true), [[1, 2], [1, 1]]);
        assert_eq!(majority_baseline(&rows), 0.6, "3 negatives of 5");
        assert_eq!(majority_baseline(&rows[..2]), 1.0);
    }

    #[test]
    fn csv_round_trip_and_bad_rows_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.csv");
        let rows = vec![row(1, 0.75), row(0, 0.25)];
        write(&path, &rows).unwrap();
        assert_eq!(read(&path).unwrap(), rows);
        std::fs::write(&path, "image,path,label,p_positive_center,p_positive_oversample\na,a,1,0.5,0.5\nb,b,x,0.5,0.5\n").unwrap();
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(err.contains("predictions.csv:3"), "{err}");
    }
}
