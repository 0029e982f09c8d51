//! Honest choice of a recipe's hyper-parameters (nested cross-validation):
//! for each outer fold, every point of a grid is trained on part of that
//! fold's training images and scored on the rest — one stratified held-out
//! slice, or each of k stratified inner folds in turn (the mean of k scores
//! is steadier than one slice of ~140 images, where one image is 0.7 %) —
//! and the best point is what the fold then trains on all its training
//! images. `choose` is handed the fold and reads only its training part:
//! the outer test images are never looked at.

use super::crossval::Crossval;
use super::run_dir::FoldDir;
use crate::train::Recipe;
use super::metrics::score;
use super::scoring::{probabilities, Views};
use crate::data::Fold;
use crate::train::stream::{self, Purpose};
use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A setting searched and the values tried, e.g. `base_lr=1e-4,1e-3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchKey {
    pub key: String,
    pub values: Vec<Value>,
}

/// Fraction of a fold's training part held out to score the points, unless set.
pub const DEFAULT_HOLDOUT: f64 = 0.2;

impl std::str::FromStr for SearchKey {
    type Err = String;
    /// `KEY=V1,V2,…`; a value is read as JSON (a number) or else as a word (`cosine`).
    fn from_str(text: &str) -> Result<Self, String> {
        let (key, values) = text.split_once('=').ok_or_else(|| format!("search {text:?}: expected KEY=V1,V2,…"))?;
        let values: Vec<Value> = values
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string())))
            .collect();
        if values.is_empty() {
            return Err(format!("search {text:?}: no values"));
        }
        Ok(SearchKey { key: key.trim().to_string(), values })
    }
}

/// The keys of an experiment file's `search = ["KEY=V1,V2", …]`.
pub fn parse_keys(texts: &[String]) -> Result<Vec<SearchKey>, String> {
    texts.iter().map(|t| t.parse()).collect()
}

/// Every combination of the keys' values, the first key varying slowest.
pub fn grid(keys: &[SearchKey]) -> Vec<BTreeMap<String, Value>> {
    let mut points = vec![BTreeMap::new()];
    for k in keys {
        points = points
            .into_iter()
            .flat_map(|p| {
                k.values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.insert(k.key.clone(), v.clone());
                    p
                })
            })
            .collect();
    }
    points
}

/// The run's recipe with the point's values set (any recipe key: `base_lr`,
/// `freeze_layers`, `head_init`, …, but the surgery, which makes another
/// network: each surgery variant is a run of its own).
pub fn apply(recipe: &Recipe, point: &BTreeMap<String, Value>) -> Result<Recipe> {
    if point.contains_key("surgery") {
        anyhow::bail!("search: the surgery is not searched; run each variant on its own");
    }
    recipe.with(&point.clone().into_iter().collect()).map_err(|e| anyhow::anyhow!("search: {e}"))
}

/// A stratified held-out slice: `fraction` of each class's positions (at
/// least one) go to the second list, in a seeded random choice.
pub fn holdout(labels: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let (mut fit, mut held) = (Vec::new(), Vec::new());
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut stream::rng(seed, Purpose::Shuffle, u64::MAX - class as u64));
        let take = ((members.len() as f64 * fraction).round() as usize).clamp(1.min(members.len()), members.len());
        held.extend_from_slice(&members[..take]);
        fit.extend_from_slice(&members[take..]);
    }
    fit.sort_unstable();
    held.sort_unstable();
    (fit, held)
}

/// Stratified k-fold over `labels`: for each split, the positions trained
/// on and the positions scored. Each class's members are shuffled (seeded)
/// and dealt round-robin, so every position is scored exactly once.
pub fn kfold(labels: &[usize], k: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut fold_of = vec![0usize; labels.len()];
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut dealt = 0;
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut stream::rng(seed, Purpose::Shuffle, u64::MAX - class as u64));
        // Continue the deal across classes, so that the folds' sizes differ by at most one.
        for m in members {
            fold_of[m] = dealt % k;
            dealt += 1;
        }
    }
    (0..k)
        .map(|s| {
            let (held, fit): (Vec<usize>, Vec<usize>) = (0..labels.len()).partition(|&i| fold_of[i] == s);
            (fit, held)
        })
        .collect()
}

/// How the points are scored: the `(fit, held)` position lists of each split
/// of the fold's training part (one split for a held-out slice).
fn splits(labels: &[usize], config: &super::crossval::CrossvalConfig, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    if config.inner_folds >= 2 {
        kfold(labels, config.inner_folds, seed)
    } else {
        vec![holdout(labels, config.holdout, seed)]
    }
}

/// One point of the grid, trained on the inner part and scored on the held-out
/// slice (with inner folds: the mean over the folds, each held out in turn).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointScore {
    pub values: BTreeMap<String, Value>,
    /// Centre-crop accuracy on the held-out slice after training.
    pub val_accuracy: f64,
    /// Mean −ln P(true class) on the held-out slice (breaks ties).
    pub val_loss: f64,
    /// Held-out accuracy before training (the probe-initialised start).
    pub val_accuracy_before: Option<f64>,
    /// Held-out accuracy after each epoch (of the trained weights, before any interpolation).
    pub val_curve: Vec<f64>,
    /// Largest relative weight change of a pretrained layer.
    pub largest_pretrained_change: Option<f64>,
    /// Training images passed forward and backward (iterations × batch;
    /// 0 where another point's training served this one).
    pub images_trained: usize,
    pub seconds: f64,
    /// With inner folds: each inner fold's held-out accuracy (the mean is `val_accuracy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub split_accuracies: Vec<f64>,
}

/// What the search did for one outer fold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRecord {
    pub grid: Vec<SearchKey>,
    pub holdout_fraction: f64,
    /// Inner folds that scored each point (0: the held-out slice alone).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inner_folds: usize,
    /// Images the points trained on and were scored on (both from the fold's
    /// training part; with inner folds, those of the first).
    pub inner_train: usize,
    pub inner_val: usize,
    pub points: Vec<PointScore>,
    /// Index of the chosen point: best held-out accuracy, then lowest held-out loss.
    pub chosen: usize,
    pub images_trained: usize,
    pub seconds: f64,
}

impl SearchRecord {
    pub fn chosen_values(&self) -> &BTreeMap<String, Value> {
        &self.points[self.chosen].values
    }
}

/// For `skip_serializing_if`: a count that is 0 (unset) is left out, so that
/// files written before the field existed read and write back the same.
pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A score kept by an earlier run of the search, if there is one.
fn kept_score(path: &std::path::Path) -> Option<Result<PointScore>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).with_context(|| format!("reading {}", path.display())))
}

/// One split of the fold's training part: the images a point trains on and
/// those that score it.
struct Inner<'a> {
    fit_x: Vec<&'a image::RgbImage>,
    fit_y: Vec<usize>,
    val_x: Vec<&'a image::RgbImage>,
    val_y: Vec<usize>,
}

/// The splits of the fold's training part (positions map into `fold.train` only).
fn inner<'a>(cv: &'a Crossval, fold: &Fold, seed: u64) -> Vec<Inner<'a>> {
    let labels: Vec<usize> = fold.train.iter().map(|&i| cv.dataset.items[i].label.index()).collect();
    let image = |pos: &[usize]| pos.iter().map(|&p| &cv.cache.images[fold.train[p]]).collect::<Vec<_>>();
    let label = |pos: &[usize]| pos.iter().map(|&p| labels[p]).collect::<Vec<_>>();
    splits(&labels, &cv.config, seed)
        .into_iter()
        .map(|(fit, val)| Inner { fit_x: image(&fit), fit_y: label(&fit), val_x: image(&val), val_y: label(&val) })
        .collect()
}

/// A point's values applied after training (`after` true) or the others:
/// points alike in the others train the same network.
fn values_applied(point: &BTreeMap<String, Value>, after: bool) -> BTreeMap<String, Value> {
    point.iter().filter(|(k, _)| Recipe::AFTER_TRAINING.contains(&k.as_str()) == after).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// For each point of the grid (from 1), the point whose training serves it:
/// the first of those that train alike. A study's plan makes the others
/// wait for it, so that workers on a cluster train each network once.
pub fn trained_by(keys: &[SearchKey]) -> Vec<usize> {
    let points = grid(keys);
    let trains = |p: &BTreeMap<String, Value>| values_applied(p, false);
    points.iter().map(|p| 1 + points.iter().position(|q| trains(q) == trains(p)).expect("a point trains like itself")).collect()
}

/// Point `j` (from 1) of the fold's search: read back if it was scored, else
/// trained on each split's inner part and scored on its held-out part. The
/// points that differ from it only in what is applied after training (the
/// weight interpolation `wise_alpha`) train the same network, so it is
/// trained once and each of them is scored on it (and kept). Reads only
/// `fold.train`. A study's workers run the points of a fold as separate
/// jobs; `choose` then reads them back.
pub fn point(cv: &Crossval, fold: &Fold, seed: u64, dir: &FoldDir, j: usize) -> Result<PointScore> {
    let points = grid(&cv.config.search);
    let values = points.get(j.wrapping_sub(1)).with_context(|| format!("the search has {} points, not {j}", points.len()))?;
    if let Some(kept) = kept_score(&dir.search_score(j)) {
        return kept;
    }
    let by = trained_by(&cv.config.search);
    let alike: Vec<usize> = (1..=points.len()).filter(|&k| by[k - 1] == by[j - 1]).collect();
    let scored: Vec<(&BTreeMap<String, Value>, f64)> =
        alike.iter().map(|&k| Ok((&points[k - 1], apply(&cv.config.recipe, &points[k - 1])?.wise_alpha))).collect::<Result<_>>()?;
    let trainer = alike.iter().position(|&k| k == j).expect("a point trains like itself");
    let training = apply(&cv.config.recipe, values)?.as_trained();
    let name = format!("fold {} search {j}/{} {}", fold.number, points.len(), describe(&values_applied(values, false)));
    let splits = inner(cv, fold, seed);
    // by_split[s][i]: split s's score of point alike[i].
    let by_split: Vec<Vec<PointScore>> = if splits.len() == 1 {
        vec![split_scores(cv, &training, &scored, trainer, &splits[0], seed, &dir.search_point(j), &name)?]
    } else {
        // Each inner fold trains in its own directory and keeps its scores, so
        // an interrupted point resumes at the inner fold it was in.
        splits
            .iter()
            .enumerate()
            .map(|(s, split)| {
                let paths: Vec<_> = alike.iter().map(|&k| dir.search_split(k, s + 1).path().join("score.json")).collect();
                if let Some(kept) = paths.iter().map(|p| kept_score(p)).collect::<Option<Vec<_>>>() {
                    return kept.into_iter().collect::<Result<Vec<_>>>();
                }
                let split_dir = dir.search_split(j, s + 1);
                let name = format!("{name} inner fold {}/{}", s + 1, splits.len());
                let scores = split_scores(cv, &training, &scored, trainer, split, seed, &split_dir, &name)?;
                for (path, score) in paths.iter().zip(&scores) {
                    write_score(path, score)?;
                }
                split_dir.remove_checkpoint();
                Ok(scores)
            })
            .collect::<Result<_>>()?
    };
    let mut own = None;
    for (i, &k) in alike.iter().enumerate() {
        let s = if splits.len() == 1 {
            by_split[0][i].clone()
        } else {
            let m = mean_score(&points[k - 1], &by_split.iter().map(|split| split[i].clone()).collect::<Vec<_>>());
            eprintln!("fold {} search {k}/{}: mean over {} inner folds {:.3}, loss {:.4}", fold.number, points.len(), splits.len(), m.val_accuracy, m.val_loss);
            m
        };
        // A point another job scored first keeps its file (the same numbers).
        if k == j || !dir.search_score(k).exists() {
            write_score(&dir.search_score(k), &s)?;
        }
        if k == j {
            own = Some(s);
        }
    }
    dir.search_point(j).remove_checkpoint();
    Ok(own.expect("a point is among those that train like it"))
}

fn write_score(path: &std::path::Path, score: &PointScore) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    Ok(crate::atomic_write::write(path, serde_json::to_string_pretty(score)?)?)
}

/// The network trained on one split's inner part with `training`, and each
/// of `scored` (a point's values and its `wise_alpha`) scored on the split's
/// held-out part. The training's cost goes to `scored[trainer]`, the point
/// that ran it, so that the search's cost counts it once.
#[allow(clippy::too_many_arguments)]
fn split_scores(cv: &Crossval, training: &Recipe, scored: &[(&BTreeMap<String, Value>, f64)], trainer: usize, split: &Inner, seed: u64, train_dir: &crate::train::TrainDir, name: &str) -> Result<Vec<PointScore>> {
    let Inner { fit_x, fit_y, val_x, val_y } = split;
    let pre = &cv.backbone.preprocess;
    let val_accuracy = |net: &crate::model::Net| score(&probabilities(net, pre, val_x, Views::Center, cv.eval_batch), val_y).accuracy;
    let t0 = std::time::Instant::now();
    let trained = cv.fine_tuning(training).train(name, seed, fit_x, fit_y, train_dir, |net| Some(val_accuracy(net)))?;
    let seconds = trained.log.last().map_or(0.0, |l| l.seconds).max(t0.elapsed().as_secs_f64());
    scored
        .iter()
        .enumerate()
        .map(|(i, &(values, alpha))| {
            let (net, movement) = trained.at(alpha)?;
            let p = probabilities(&net, pre, val_x, Views::Center, cv.eval_batch);
            let val_loss = p.iter().zip(val_y).map(|(p, &y)| -(p[y].max(1e-12) as f64).ln()).sum::<f64>() / val_y.len().max(1) as f64;
            let s = PointScore {
                values: values.clone(),
                val_accuracy: score(&p, val_y).accuracy,
                val_loss,
                val_accuracy_before: trained.acc_before,
                val_curve: trained.log.iter().filter_map(|e| e.test_acc).collect(),
                largest_pretrained_change: super::movement::largest_pretrained(&movement),
                images_trained: if i == trainer { training.solver.iterations(fit_x.len()) * training.solver.batch } else { 0 },
                seconds: if i == trainer { seconds } else { 0.0 },
                split_accuracies: Vec::new(),
            };
            // The name gives the training's values; each scored point adds its own after-training ones.
            let after = values_applied(values, true);
            let how = if after.is_empty() { String::new() } else { format!(" {}", describe(&after)) };
            eprintln!("{name}{how}: held-out accuracy {:.3} (before {}), loss {:.4}", s.val_accuracy, s.val_accuracy_before.map_or("-".into(), |a| format!("{a:.3}")), s.val_loss);
            Ok(s)
        })
        .collect()
}

/// A point's score over inner folds: accuracies, losses and curves averaged
/// (each inner fold weighs the same), costs summed, the largest change the largest.
fn mean_score(values: &BTreeMap<String, Value>, scores: &[PointScore]) -> PointScore {
    let n = scores.len() as f64;
    let mean = |f: &dyn Fn(&PointScore) -> f64| scores.iter().map(f).sum::<f64>() / n;
    let befores: Option<Vec<f64>> = scores.iter().map(|s| s.val_accuracy_before).collect();
    let epochs = scores.iter().map(|s| s.val_curve.len()).min().unwrap_or(0);
    PointScore {
        values: values.clone(),
        val_accuracy: mean(&|s| s.val_accuracy),
        val_loss: mean(&|s| s.val_loss),
        val_accuracy_before: befores.map(|b| b.iter().sum::<f64>() / n),
        val_curve: (0..epochs).map(|e| mean(&|s| s.val_curve[e])).collect(),
        largest_pretrained_change: scores.iter().filter_map(|s| s.largest_pretrained_change).reduce(f64::max),
        images_trained: scores.iter().map(|s| s.images_trained).sum(),
        seconds: scores.iter().map(|s| s.seconds).sum(),
        split_accuracies: scores.iter().map(|s| s.val_accuracy).collect(),
    }
}

/// Runs the search of `cv.config` for `fold` in `dir` (resumable: each
/// finished point is kept) and returns the chosen recipe. Reads only
/// `fold.train`.
pub fn choose(cv: &Crossval, fold: &Fold, seed: u64, dir: &FoldDir) -> Result<(Recipe, SearchRecord)> {
    let n = grid(&cv.config.search).len();
    let scores = (1..=n).map(|j| point(cv, fold, seed, dir, j)).collect::<Result<Vec<_>>>()?;
    let splits = inner(cv, fold, seed);
    let chosen = best(&scores);
    let record = SearchRecord {
        grid: cv.config.search.clone(),
        holdout_fraction: cv.config.holdout,
        inner_folds: if splits.len() > 1 { splits.len() } else { 0 },
        inner_train: splits[0].fit_x.len(),
        inner_val: splits[0].val_x.len(),
        images_trained: scores.iter().map(|s| s.images_trained).sum(),
        seconds: scores.iter().map(|s| s.seconds).sum(),
        points: scores,
        chosen,
    };
    eprintln!("fold {}: chose {} (held-out accuracy {:.3})", fold.number, describe(record.chosen_values()), record.points[chosen].val_accuracy);
    Ok((apply(&cv.config.recipe, record.chosen_values())?, record))
}

/// The best point: highest held-out accuracy, then lowest held-out loss, then the first.
fn best(scores: &[PointScore]) -> usize {
    let mut best = 0;
    for (j, s) in scores.iter().enumerate() {
        let b = &scores[best];
        if s.val_accuracy > b.val_accuracy + 1e-12 || ((s.val_accuracy - b.val_accuracy).abs() <= 1e-12 && s.val_loss < b.val_loss) {
            best = j;
        }
    }
    best
}

/// `key=value key=value`, for logs and tables.
pub fn describe(point: &BTreeMap<String, Value>) -> String {
    point.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect::<Vec<_>>().join(" ")
}

/// A searched value as written on the command line: `cosine`, not `"cosine"`.
pub fn value_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_into_a_grid() {
        let a: SearchKey = "base_lr=1e-4,0.001".parse().unwrap();
        let b: SearchKey = "schedule=step,cosine".parse().unwrap();
        assert_eq!(a.values, [serde_json::json!(1e-4), serde_json::json!(0.001)]);
        assert_eq!(b.values, [serde_json::json!("step"), serde_json::json!("cosine")]);
        let g = grid(&[a, b]);
        assert_eq!(g.len(), 4);
        assert_eq!(describe(&g[1]), "base_lr=0.0001 schedule=cosine");
        assert!("base_lr".parse::<SearchKey>().is_err() && "base_lr=".parse::<SearchKey>().is_err());
    }

    #[test]
    fn holdout_is_stratified_disjoint_and_seeded() {
        let labels: Vec<usize> = (0..100).map(|i| usize::from(i % 4 != 0)).collect(); // 25 negative, 75 positive
        let (fit, held) = holdout(&labels, 0.2, 3);
        assert_eq!(held.len(), 20);
        assert_eq!(held.iter().filter(|&&i| labels[i] == 0).count(), 5);
        let mut all: Vec<usize> = fit.iter().chain(&held).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(holdout(&labels, 0.2, 3), (fit.clone(), held.clone()));
        assert_ne!(holdout(&labels, 0.2, 4).1, held);
    }

    #[test]
    fn kfold_scores_every_position_once_stratified_and_seeded() {
        let labels: Vec<usize> = (0..100).map(|i| usize::from(i % 4 != 0)).collect(); // 25 negative, 75 positive
        let folds = kfold(&labels, 3, 5);
        assert_eq!(folds.len(), 3);
        let mut held: Vec<usize> = folds.iter().flat_map(|(_, h)| h.clone()).collect();
        held.sort_unstable();
        assert_eq!(held, (0..100).collect::<Vec<_>>(), "every position held out exactly once");
        for (fit, h) in &folds {
            assert_eq!(fit.len() + h.len(), 100);
            assert!(fit.iter().all(|i| !h.contains(i)), "fit and held-out parts are disjoint");
            assert!((33..=34).contains(&h.len()), "sizes {}", h.len());
            let negatives = h.iter().filter(|&&i| labels[i] == 0).count();
            assert!((8..=9).contains(&negatives), "stratified: {negatives} negatives of 25 in a third");
        }
        assert_eq!(kfold(&labels, 3, 5), folds);
        assert_ne!(kfold(&labels, 3, 6), folds);
    }

    #[test]
    fn a_point_over_inner_folds_is_their_mean() {
        let s = |a: f64, l: f64, c: Vec<f64>| PointScore { values: BTreeMap::new(), val_accuracy: a, val_loss: l, val_accuracy_before: Some(a - 0.1), val_curve: c, largest_pretrained_change: Some(l), images_trained: 10, seconds: 2.0, split_accuracies: vec![] };
        let m = mean_score(&BTreeMap::new(), &[s(0.8, 0.3, vec![0.7, 0.8]), s(0.9, 0.5, vec![0.6, 0.9]), s(0.7, 0.4, vec![0.5, 0.7])]);
        assert!((m.val_accuracy - 0.8).abs() < 1e-12 && (m.val_loss - 0.4).abs() < 1e-12);
        assert!((m.val_accuracy_before.unwrap() - 0.7).abs() < 1e-12);
        assert_eq!(m.split_accuracies, [0.8, 0.9, 0.7]);
        assert!((m.val_curve[0] - 0.6).abs() < 1e-12 && (m.val_curve[1] - 0.8).abs() < 1e-12);
        assert_eq!((m.images_trained, m.seconds, m.largest_pretrained_change), (30, 6.0, Some(0.5)));
    }

    #[test]
    fn points_alike_but_for_the_interpolation_are_trained_by_the_first() {
        let keys = [SearchKey { key: "base_lr".into(), values: vec![1e-4.into(), 1e-3.into()] }, "wise_alpha=0.5,1".parse().unwrap()];
        assert_eq!(trained_by(&keys), [1, 1, 3, 3]);
        assert_eq!(trained_by(&["wise_alpha=0.5,1".parse().unwrap(), "epochs=2,3".parse().unwrap()]), [1, 2, 1, 2]);
        assert_eq!(trained_by(&["base_lr=1e-4,1e-3".parse().unwrap()]), [1, 2]);
    }

    #[test]
    fn ties_go_to_the_lower_loss() {
        let s = |a: f64, l: f64| PointScore { values: BTreeMap::new(), val_accuracy: a, val_loss: l, val_accuracy_before: None, val_curve: vec![], largest_pretrained_change: None, images_trained: 0, seconds: 0.0, split_accuracies: vec![] };
        assert_eq!(best(&[s(0.8, 0.5), s(0.85, 0.6), s(0.85, 0.4), s(0.7, 0.1)]), 2);
    }
}
