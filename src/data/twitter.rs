//! The Twitter visual sentiment dataset (You et al., AAAI 2015) as published:
//!
//! ```text
//! ROOT/images/<file name>
//! ROOT/ground_truth/twitter_{five,four,three}_agrees.txt
//! ROOT/folds/{five,four,three}_agree/fold<K>/{train,test}.txt
//! ```

use super::dataset::{items_from_entries, resolve_folds, Dataset, FoldFiles, Loaded};
use super::list_file;
use super::problem::Problem;
use std::path::{Path, PathBuf};

/// Agreement subsets: images on which at least N of the 5 annotators agree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subset {
    /// The paper's subset (880 images).
    #[default]
    Five,
    Four,
    Three,
}

impl Subset {
    pub const ALL: [Subset; 3] = [Subset::Five, Subset::Four, Subset::Three];

    pub fn name(self) -> &'static str {
        match self {
            Subset::Five => "five",
            Subset::Four => "four",
            Subset::Three => "three",
        }
    }

    pub fn label_file(self, root: &Path) -> PathBuf {
        root.join("ground_truth").join(format!("twitter_{}_agrees.txt", self.name()))
    }

    pub fn folds_dir(self, root: &Path) -> PathBuf {
        root.join("folds").join(format!("{}_agree", self.name()))
    }
}

/// True when `root` looks like the Twitter layout.
pub fn is_twitter_root(root: &Path) -> bool {
    root.join("ground_truth").is_dir() && root.join("images").is_dir()
}

/// Reads one agreement subset and its published folds, collecting every problem.
pub fn load(root: &Path, subset: Subset) -> Loaded {
    let mut problems = Vec::new();
    let label_file = subset.label_file(root);
    let (entries, p) = list_file::read(&label_file);
    let unreadable = entries.is_empty() && p.iter().any(|p| p.line.is_none());
    problems.extend(p);
    let name = format!("twitter/{}", subset.name());
    if unreadable {
        // Every fold line would be "not in the label file": say the cause alone.
        return Loaded::new(Dataset { name, items: Vec::new(), folds: Vec::new(), left_out: Vec::new() }, problems);
    }
    let images = root.join("images");
    let items = items_from_entries(&label_file, &entries, |n| images.join(n), &mut problems);
    let fold_files = read_fold_dir(&subset.folds_dir(root), &mut problems);
    let (folds, left_out) = resolve_folds(&items, &fold_files, &mut problems);
    Loaded::new(Dataset { name, items, folds, left_out }, problems)
}

/// `dataset` without the images of another subset (by name), e.g. the
/// four-agree images on which fewer than five annotators agree; its folds are
/// dropped (they index the whole subset).
pub fn without_subset(dataset: Dataset, root: &Path, exclude: Subset) -> Loaded {
    let file = exclude.label_file(root);
    let (entries, problems) = list_file::read(&file);
    let excluded: std::collections::HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let items = dataset.items.into_iter().filter(|i| !excluded.contains(i.name.as_str())).collect();
    let name = format!("{} without {}", dataset.name, exclude.name());
    Loaded::new(Dataset { name, items, folds: Vec::new(), left_out: Vec::new() }, problems)
}

/// Adds the images of a larger subset that are not in `loaded`'s to every
/// fold's training part, with their labels from that subset's file: five +
/// three trains each fold on its 704 five-agree images and the 387 on which 3
/// or 4 of the 5 annotators agree. The test parts stay the published
/// five-agree ones, so accuracies compare with the paper's folds, and the
/// extra images are never tested on (no test part of a smaller subset's folds
/// holds them).
pub fn with_extra_training(loaded: Loaded, root: &Path, subset: Subset, extra: Subset) -> Loaded {
    let Loaded { mut dataset, mut problems } = loaded;
    let base = subset.name();
    let label_file = extra.label_file(root);
    // Subsets are declared from the fewest images (five) to the most (three).
    if extra <= subset {
        problems.push(Problem::file(&label_file, format!("the {} subset adds no images to the {base} subset: extra training images must come from a larger one (fewer annotators agreeing)", extra.name())));
        return Loaded::new(dataset, problems);
    }
    let (entries, p) = list_file::read(&label_file);
    problems.extend(p);
    let known: std::collections::HashMap<&str, crate::data::Label> = dataset.items.iter().map(|i| (i.name.as_str(), i.label)).collect();
    let mut added = Vec::new();
    for e in &entries {
        match known.get(e.name.as_str()) {
            // Every image agreed on by more annotators is in the larger subset too, with the same majority.
            Some(&label) if label != e.label => problems.push(Problem::at(&label_file, e.line, format!("image {} is {} here but {} in the {base} subset", e.name, e.label.name(), label.name()))),
            Some(_) => {}
            None => added.push(e.clone()),
        }
    }
    let images = root.join("images");
    let first = dataset.items.len();
    dataset.items.extend(items_from_entries(&label_file, &added, |n| images.join(n), &mut problems));
    for fold in &mut dataset.folds {
        fold.train.extend(first..dataset.items.len());
    }
    dataset.name = format!("{}+{}", dataset.name, extra.name());
    Loaded::new(dataset, problems)
}

/// Reads `DIR/fold1 … foldK/{train,test}.txt`; folds are numbered from 1 without gaps.
pub fn read_fold_dir(dir: &Path, problems: &mut Vec<Problem>) -> Vec<FoldFiles> {
    let mut numbers: Vec<usize> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("fold")?.parse().ok())
            .collect(),
        Err(e) => {
            problems.push(Problem::file(dir, format!("cannot read the fold directory: {e}")));
            return Vec::new();
        }
    };
    numbers.sort_unstable();
    if numbers.is_empty() {
        problems.push(Problem::file(dir, "no fold<K> directories"));
    }
    for (expected, &n) in (1..).zip(&numbers) {
        if n != expected {
            problems.push(Problem::file(dir, format!("fold{expected} is missing (found fold{n})")));
            break;
        }
    }
    numbers
        .into_iter()
        .map(|number| {
            let fold_dir = dir.join(format!("fold{number}"));
            let train_file = fold_dir.join("train.txt");
            let test_file = fold_dir.join("test.txt");
            let (train, p) = list_file::read(&train_file);
            problems.extend(p);
            let (test, p) = list_file::read(&test_file);
            problems.extend(p);
            FoldFiles { number, train_file, train, test_file, test }
        })
        .collect()
}
