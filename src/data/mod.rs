//! Datasets: where the images and labels are, how they are split into folds,
//! and every way a dataset on disk can be wrong.

pub mod check;
pub mod dataset;
pub mod fetch;
pub mod folders;
pub mod image_files;
pub mod label;
pub mod label_match;
pub mod list_file;
pub mod problem;
pub mod split;
pub mod twitter;

pub use dataset::{Counts, Dataset, Fold, Item, Loaded};
pub use label::Label;
pub use problem::{Problem, Problems};
pub use twitter::Subset;

use std::path::{Path, PathBuf};

/// How a dataset lies on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The Twitter dataset with its published folds.
    Twitter,
    /// `ROOT/positive/…`, `ROOT/negative/…`.
    Folders,
    /// A CSV file of `path,label`.
    Csv,
    /// A label file of `name 0|1` lines, the images under its folder.
    LabelFile,
}

impl Layout {
    /// Recognises the layout of a root: a `.csv` file, another file (a label
    /// file), the Twitter layout, or class folders.
    pub fn detect(root: &Path) -> Option<Layout> {
        if root.is_file() && root.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            Some(Layout::Csv)
        } else if root.is_file() {
            Some(Layout::LabelFile)
        } else if twitter::is_twitter_root(root) {
            Some(Layout::Twitter)
        } else if root.join("positive").is_dir() || root.join("negative").is_dir() {
            Some(Layout::Folders)
        } else {
            None
        }
    }
}

/// Folds of a drawn split when none are asked for, and the seed that draws them.
pub const DEFAULT_K: usize = 5;
pub const DEFAULT_SPLIT_SEED: u64 = 0;

/// Where the folds of a dataset without published folds come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldSource {
    /// Fold files `DIR/fold<K>/{train,test}.txt` (e.g. written by `data split`).
    Dir(PathBuf),
    /// A stratified k-fold split drawn with a seed.
    Drawn { k: usize, seed: u64 },
    /// No folds: the whole set, as one (what `evaluate` scores). The Twitter
    /// layout still reads its published folds.
    None,
}

impl Default for FoldSource {
    fn default() -> Self {
        FoldSource::Drawn { k: DEFAULT_K, seed: DEFAULT_SPLIT_SEED }
    }
}

/// How a run records the data it used, e.g. `twitter/five (../shared/data/twitter)`;
/// a run resumes, and its probes run, only on data described the same way.
pub fn describe(dataset: &Dataset, req: &DataRequest) -> String {
    format!("{} ({})", dataset.name, req.root.display())
}

/// What to read: a root, the subset (Twitter only) and the folds (other layouts).
#[derive(Debug, Clone)]
pub struct DataRequest {
    pub root: PathBuf,
    pub subset: Subset,
    pub folds: FoldSource,
    /// A larger Twitter subset whose other images join every fold's training
    /// part (`twitter::with_extra_training`); the test parts stay as published.
    pub extra_train: Option<Subset>,
}

/// Reads the dataset a request names, collecting every problem.
pub fn load(req: &DataRequest) -> Loaded {
    let layout = Layout::detect(&req.root);
    let mut problems = Vec::new();
    let items = match layout {
        Some(Layout::Twitter) => {
            let loaded = twitter::load(&req.root, req.subset);
            return match req.extra_train {
                Some(extra) => twitter::with_extra_training(loaded, &req.root, req.subset, extra),
                None => loaded,
            };
        }
        Some(Layout::Folders) => folders::load_folders(&req.root, &mut problems),
        Some(Layout::Csv) => folders::load_csv(&req.root, &mut problems),
        Some(Layout::LabelFile) => folders::load_label_file(&req.root, &mut problems),
        None => {
            problems.push(Problem::file(
                &req.root,
                "not a dataset: expected the Twitter layout (ground_truth/, images/), \
                 class folders (positive/, negative/), a .csv file of path,label \
                 or a label file of `name 0|1` lines beside the images",
            ));
            Vec::new()
        }
    };
    let (folds, left_out) = match &req.folds {
        FoldSource::Dir(dir) => {
            let files = twitter::read_fold_dir(dir, &mut problems);
            dataset::resolve_folds(&items, &files, &mut problems)
        }
        FoldSource::None => (Vec::new(), Vec::new()),
        FoldSource::Drawn { k, seed } => {
            if *k < 2 {
                problems.push(Problem::file(&req.root, format!("k-fold cross-validation needs k ≥ 2 folds, not {k}")));
                (Vec::new(), (0..items.len()).collect())
            } else if items.len() < *k {
                problems.push(Problem::file(&req.root, format!("{} images cannot make {k} folds", items.len())));
                (Vec::new(), (0..items.len()).collect())
            } else {
                (split::stratified_k_fold(&items, *k, *seed), Vec::new())
            }
        }
    };
    if req.extra_train.is_some() {
        problems.push(Problem::file(&req.root, "extra training images (--extra-train) come from a larger Twitter subset: this is not the Twitter layout"));
    }
    let name = req.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Loaded::new(Dataset { name, items, folds, left_out }, problems)
}
