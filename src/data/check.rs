//! `deepsent data check`: counts per subset and fold, and every problem.

use super::dataset::Counts;
use super::{load, DataRequest, Layout, Loaded, Problem, Subset};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Serialize)]
pub struct FoldCounts {
    pub fold: usize,
    pub train: usize,
    pub test: usize,
    pub test_positive: usize,
    pub test_negative: usize,
}

/// The whole report; its JSON form is the `data check --json` output.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub root: String,
    pub layout: String,
    pub subsets: BTreeMap<String, Counts>,
    pub folds: BTreeMap<String, Vec<FoldCounts>>,
    /// Images of a subset that no fold uses (the published Twitter folds leave
    /// a few out on purpose: see the dataset's README).
    pub left_out: BTreeMap<String, Vec<String>>,
    pub problems: Vec<Problem>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Whether deepsent can use an image file: `Err(why)` without the path.
/// Given by the caller (decoding is the preprocessing stage, after data).
pub type ImageCheck = dyn Fn(&std::path::Path) -> Result<(), String> + Sync;

/// Checks every subset of the dataset a request names (all three agreement
/// subsets for Twitter, the one set otherwise), and each image once with
/// `image_check`. With `strict`, images left out of every fold count as
/// problems too.
pub fn check(req: &DataRequest, strict: bool, image_check: &ImageCheck) -> CheckReport {
    let layout = Layout::detect(&req.root);
    let subsets: Vec<(String, Loaded)> = match layout {
        Some(Layout::Twitter) => Subset::ALL
            .iter()
            // Extra training images only extend the subsets smaller than theirs.
            .map(|&s| (s.name().to_string(), load(&DataRequest { subset: s, extra_train: req.extra_train.filter(|&e| e > s), ..req.clone() })))
            .collect(),
        _ => vec![("all".to_string(), load(req))],
    };
    let mut report = CheckReport {
        root: req.root.display().to_string(),
        layout: layout.map_or("unknown".to_string(), |l| format!("{l:?}").to_lowercase()),
        subsets: BTreeMap::new(),
        folds: BTreeMap::new(),
        left_out: BTreeMap::new(),
        problems: Vec::new(),
    };
    let mut images = BTreeMap::new();
    for (name, loaded) in subsets {
        let ds = &loaded.dataset;
        report.subsets.insert(name.clone(), ds.all_counts());
        let folds = ds
            .folds
            .iter()
            .map(|f| {
                let t = ds.counts(f.test.iter().copied());
                FoldCounts {
                    fold: f.number,
                    train: f.train.len(),
                    test: t.images,
                    test_positive: t.positive,
                    test_negative: t.negative,
                }
            })
            .collect();
        report.folds.insert(name.clone(), folds);
        let left: Vec<String> = ds.left_out.iter().map(|&i| ds.items[i].name.clone()).collect();
        if strict && !left.is_empty() {
            report.problems.push(Problem::file(
                &req.root,
                format!("subset {name}: {} image(s) are in no fold: {}", left.len(), left.join(", ")),
            ));
        }
        report.left_out.insert(name, left);
        report.problems.extend(loaded.problems);
        for item in &ds.items {
            images.entry(item.path.clone()).or_insert(());
        }
    }
    report.problems.extend(unusable_images(images.into_keys().collect(), image_check));
    report
}

/// A problem for each listed image that `image_check` refuses (a CSV can
/// list any file: /etc/hostname, a decompression bomb). Missing files were
/// reported with their list line already.
fn unusable_images(paths: Vec<PathBuf>, image_check: &ImageCheck) -> Vec<Problem> {
    use rayon::prelude::*;
    paths.par_iter().filter(|p| p.exists()).filter_map(|p| image_check(p).err().map(|why| Problem::file(p, why))).collect()
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "dataset {} ({})", self.root, self.layout)?;
        for (name, c) in &self.subsets {
            writeln!(
                f,
                "  {name:<6} {:>5} images  {:>5} positive  {:>5} negative",
                c.images, c.positive, c.negative
            )?;
            for fc in &self.folds[name] {
                writeln!(
                    f,
                    "         fold {}: train {:>4}  test {:>4} ({} positive, {} negative)",
                    fc.fold, fc.train, fc.test, fc.test_positive, fc.test_negative
                )?;
            }
            let left = &self.left_out[name];
            if !left.is_empty() {
                writeln!(f, "         in no fold: {}", left.join(", "))?;
            }
        }
        if self.problems.is_empty() {
            writeln!(f, "no problems")
        } else {
            writeln!(f, "{} problem(s):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  {p}")?;
            }
            Ok(())
        }
    }
}
