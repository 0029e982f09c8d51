//! A labelled image set with its cross-validation folds, whatever the layout
//! on disk it came from.

use super::label::Label;
use super::list_file::Entry;
use super::problem::{Problem, Problems};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The name the list and fold files use for it.
    pub name: String,
    pub path: PathBuf,
    pub label: Label,
}

/// One cross-validation fold: indices into [`Dataset::items`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// 1-based, as in the fold directory names (`fold1` …).
    pub number: usize,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// A labelled set of images and its folds.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Human-readable name, e.g. `twitter/five`.
    pub name: String,
    pub items: Vec<Item>,
    pub folds: Vec<Fold>,
    /// Items that no fold uses (the published Twitter folds leave some out on
    /// purpose so that every test fold has the same size).
    pub left_out: Vec<usize>,
}

/// A dataset as read, with every problem found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub dataset: Dataset,
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// Wraps a dataset and its problems: those about a whole file first (a
    /// file that cannot be read is the likely cause of the rest), then by
    /// file and line so reports read top to bottom.
    pub fn new(dataset: Dataset, mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| (a.line.is_some(), &a.file, a.line).cmp(&(b.line.is_some(), &b.file, b.line)));
        Loaded { dataset, problems }
    }

    /// The dataset if nothing is wrong with it, else every problem at once.
    pub fn into_result(self) -> Result<Dataset, Problems> {
        if self.problems.is_empty() {
            Ok(self.dataset)
        } else {
            Err(Problems(self.problems))
        }
    }
}

/// Class counts of a set of items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub images: usize,
    pub positive: usize,
    pub negative: usize,
}

impl Dataset {
    pub fn counts(&self, indices: impl IntoIterator<Item = usize>) -> Counts {
        let mut c = Counts::default();
        for i in indices {
            c.images += 1;
            match self.items[i].label {
                Label::Positive => c.positive += 1,
                Label::Negative => c.negative += 1,
            }
        }
        c
    }

    pub fn all_counts(&self) -> Counts {
        self.counts(0..self.items.len())
    }

    pub fn fold(&self, number: usize) -> Option<&Fold> {
        self.folds.iter().find(|f| f.number == number)
    }
}

/// Turns label-file entries into items, checking each image exists.
pub fn items_from_entries(
    label_file: &Path,
    entries: &[Entry],
    path_of: impl Fn(&str) -> PathBuf,
    problems: &mut Vec<Problem>,
) -> Vec<Item> {
    let mut items = Vec::with_capacity(entries.len());
    for e in entries {
        let path = path_of(&e.name);
        if !path.is_file() {
            problems.push(Problem::at(
                label_file,
                e.line,
                format!("image {} not found at {}", e.name, path.display()),
            ));
        }
        // Kept even when missing so fold files that name it do not report a
        // second, misleading "not in the subset" problem.
        items.push(Item { name: e.name.clone(), path, label: e.label });
    }
    items
}

/// The entries of one fold's train and test list files.
pub struct FoldFiles {
    pub number: usize,
    pub train_file: PathBuf,
    pub train: Vec<Entry>,
    pub test_file: PathBuf,
    pub test: Vec<Entry>,
}

/// Resolves fold entries against the items and checks the folds: every entry
/// names an item of the subset with the same label, no image is in both train
/// and test of a fold, no image is in two test folds, and every fold uses the
/// same images (its train and test together are all the images of all test
/// folds). Returns the folds and the items no fold uses.
pub fn resolve_folds(
    items: &[Item],
    fold_files: &[FoldFiles],
    problems: &mut Vec<Problem>,
) -> (Vec<Fold>, Vec<usize>) {
    let index: HashMap<&str, usize> =
        items.iter().enumerate().map(|(i, it)| (it.name.as_str(), i)).collect();
    // Resolved entries as (item index, line) pairs.
    let resolve = |file: &Path, entries: &[Entry], problems: &mut Vec<Problem>| -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            match index.get(e.name.as_str()) {
                None => problems.push(Problem::at(
                    file,
                    e.line,
                    format!("{} is not in the dataset's label file", e.name),
                )),
                Some(&i) if items[i].label != e.label => problems.push(Problem::at(
                    file,
                    e.line,
                    format!(
                        "{} has label {} here but {} in the label file",
                        e.name,
                        e.label.index(),
                        items[i].label.index()
                    ),
                )),
                Some(&i) => out.push((i, e.line)),
            }
        }
        out
    };

    let mut folds = Vec::new();
    // test_owner[i] = (fold number, line) of the test file that holds item i.
    let mut test_owner: HashMap<usize, (usize, usize)> = HashMap::new();
    for ff in fold_files {
        let train = resolve(&ff.train_file, &ff.train, problems);
        let test = resolve(&ff.test_file, &ff.test, problems);
        let train: Vec<usize> = train.into_iter().map(|(i, _)| i).collect();
        let train_set: std::collections::HashSet<usize> = train.iter().copied().collect();
        for &(i, line) in &test {
            let name = &items[i].name;
            if train_set.contains(&i) {
                problems.push(Problem::at(
                    &ff.test_file,
                    line,
                    format!("{name} is in both train and test of fold {}", ff.number),
                ));
            }
            if let Some((other, other_line)) = test_owner.insert(i, (ff.number, line)) {
                problems.push(Problem::at(
                    &ff.test_file,
                    line,
                    format!("{name} is also in the test part of fold {other} (line {other_line})"),
                ));
            }
        }
        let test = test.into_iter().map(|(i, _)| i).collect();
        folds.push(Fold { number: ff.number, train, test });
    }

    // Every fold must use the same images: those of all test parts together.
    let universe: std::collections::BTreeSet<usize> = test_owner.keys().copied().collect();
    for (ff, fold) in fold_files.iter().zip(&folds) {
        let used: std::collections::BTreeSet<usize> =
            fold.train.iter().chain(&fold.test).copied().collect();
        let missing: Vec<&str> =
            universe.difference(&used).map(|&i| items[i].name.as_str()).collect();
        if !missing.is_empty() {
            problems.push(Problem::file(
                &ff.train_file,
                format!(
                    "fold {} does not cover the images of the other folds: {} missing ({}{})",
                    ff.number,
                    missing.len(),
                    missing.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                    if missing.len() > 3 { ", …" } else { "" }
                ),
            ));
        }
        let extra: Vec<&str> =
            used.difference(&universe).map(|&i| items[i].name.as_str()).collect();
        if !extra.is_empty() {
            problems.push(Problem::file(
                &ff.train_file,
                format!(
                    "fold {} trains on {} image(s) that no test part holds ({}{})",
                    ff.number,
                    extra.len(),
                    extra.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                    if extra.len() > 3 { ", …" } else { "" }
                ),
            ));
        }
    }
    let left_out = (0..items.len()).filter(|i| !universe.contains(i)).collect();
    (folds, left_out)
}
/// The names (as `a` gives them, sorted) of the images of `a` that are also
/// in `b`: the same file, however each set spells its path.
pub fn shared_images(a: &[Item], b: &[Item]) -> Vec<String> {
    let canonical = |item: &Item| item.path.canonicalize().unwrap_or_else(|_| item.path.clone());
    let in_b: std::collections::HashSet<PathBuf> = b.iter().map(canonical).collect();
    let mut shared: Vec<String> = a.iter().filter(|i| in_b.contains(&canonical(i))).map(|i| i.name.clone()).collect();
    shared.sort();
    shared
}

