//! Experiments as data: a TOML file names the backbone, the data, the
//! fine-tuning recipe (Table 1), the probes (Table 2) and the surgery
//! variants (Tables 3–4); `deepsent reproduce` runs it into a report.
//! Every default is the paper's setting, so `experiments/paper.toml` is short.

pub mod jobs;
pub mod lease;
pub mod runner;
pub mod workbench;

use crate::data::Subset;
use crate::eval::linear::Classifier;
use crate::model::surgery;
use crate::train::{RecipeOverrides, SolverSettings};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Title of the report.
    pub title: String,
    /// caffenet, squeezenet1.0, efficientnet-lite0 or a .prototxt.
    pub backbone: String,
    /// ImageNet weights [default: the backbone's own, in the models
    /// directory or fetched with `deepsent weights fetch`]. Relative paths are
    /// relative to the experiment file.
    #[serde(default)]
    pub weights: Option<PathBuf>,
    #[serde(default)]
    pub data: DataSection,
    /// Table 1: the fine-tuning recipe, as changes to the paper's.
    #[serde(default)]
    pub finetune: RecipeOverrides,
    /// Table 2.
    #[serde(default)]
    pub probes: ProbeSection,
    /// Tables 3–4: each variant is fine-tuned like `finetune` with its own surgery.
    #[serde(default)]
    pub surgery: Vec<Variant>,
    /// What `--quick` keeps.
    #[serde(default)]
    pub quick: QuickSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Dataset root [default: $DEEPSENT_DATA, else ../shared/data/twitter].
    #[serde(default)]
    pub root: Option<PathBuf>,
    #[serde(default = "default_subset")]
    pub subset: Subset,
    /// Fold files `DIR/fold<K>/{train,test}.txt` for data without published
    /// folds [default: a stratified split of `k` folds drawn with `split_seed`].
    #[serde(default)]
    pub folds: Option<PathBuf>,
    #[serde(default = "five")]
    pub k: usize,
    #[serde(default)]
    pub split_seed: u64,
    /// A larger Twitter subset whose other images join every fold's training
    /// part (as `--extra-train`); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_train: Option<Subset>,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection { root: None, subset: Subset::Five, folds: None, k: 5, split_seed: 0, extra_train: None }
    }
}

impl DataSection {
    /// Where the folds come from (ignored by the Twitter layout, which has its own).
    pub fn fold_source(&self) -> crate::data::FoldSource {
        match &self.folds {
            Some(dir) => crate::data::FoldSource::Dir(dir.clone()),
            None => crate::data::FoldSource::Drawn { k: self.k, seed: self.split_seed },
        }
    }
}

fn five() -> usize {
    5
}

fn default_subset() -> Subset {
    Subset::Five
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSection {
    /// Probe the ImageNet model.
    #[serde(default = "yes")]
    pub pretrained: bool,
    /// Probe each fold's fine-tuned model (Table 1's run).
    #[serde(default = "yes")]
    pub finetuned: bool,
    /// Layer outputs [default: every trunk blob].
    #[serde(default)]
    pub layers: Vec<String>,
    #[serde(default = "both_classifiers")]
    pub classifiers: Vec<Classifier>,
    #[serde(default = "three")]
    pub inner_folds: usize,
}

impl Default for ProbeSection {
    fn default() -> Self {
        ProbeSection { pretrained: true, finetuned: true, layers: Vec::new(), classifiers: both_classifiers(), inner_folds: 3 }
    }
}

fn yes() -> bool {
    true
}
fn three() -> usize {
    3
}
fn both_classifiers() -> Vec<Classifier> {
    vec![Classifier::Svm, Classifier::Softmax]
}

/// A surgery variant: its name (a preset name unless `surgery` is given)
/// and what it changes in the `finetune` recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(flatten)]
    pub recipe: RecipeOverrides,
}

impl Variant {
    /// The full recipe: `finetune`'s, then the variant's own fields; the
    /// surgery is the variant's name unless it gives one. A preset's own base
    /// rate (the paper's fc6-2) applies when neither sets `base_lr`.
    pub fn recipe(&self, base: &RecipeOverrides) -> RecipeOverrides {
        let mut r = base.overridden_by(&self.recipe);
        r.surgery = Some(self.recipe.surgery.clone().unwrap_or_else(|| self.name.clone()));
        r
    }
}

/// The small version `--quick` runs (stated in the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSection {
    #[serde(default = "quick_folds")]
    pub folds: Vec<usize>,
    #[serde(default = "one")]
    pub epochs: f64,
    /// Surgery variants kept (by name) [default: the first].
    #[serde(default)]
    pub surgery: Option<Vec<String>>,
    /// Probed layers [default: a few, spread over the depth].
    #[serde(default)]
    pub probe_layers: Option<Vec<String>>,
}

impl Default for QuickSection {
    fn default() -> Self {
        QuickSection { folds: quick_folds(), epochs: 1.0, surgery: None, probe_layers: None }
    }
}

fn quick_folds() -> Vec<usize> {
    vec![1, 2]
}
fn one() -> f64 {
    1.0
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Parse { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Experiment {
    /// Reads and checks an experiment file; errors name the file and line.
    pub fn load(path: &Path) -> Result<Experiment, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|source| ExperimentError::Read { path: path.into(), source })?;
        let mut exp = Self::parse(&text, path)?;
        // Paths in the file are relative to it.
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut exp.weights, &mut exp.data.root, &mut exp.data.folds].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(exp)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Experiment, ExperimentError> {
        let exp: Experiment = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_column(text, s.start)).unwrap_or((0, 0));
            ExperimentError::Parse { path: path.into(), line, column, message: e.message().to_string() }
        })?;
        exp.check().map_err(|message| ExperimentError::Invalid { path: path.into(), message })?;
        Ok(exp)
    }

    /// What serde cannot see: surgeries that parse, names that are unique.
    fn check(&self) -> Result<(), String> {
        let recipes = std::iter::once(("finetune".to_string(), self.finetune.clone())).chain(self.surgery.iter().map(|v| (format!("surgery {}", v.name), v.recipe(&self.finetune))));
        for (what, r) in recipes {
            surgery::resolve(&self.backbone, r.surgery()).map_err(|e| format!("{what}: {e}"))?;
            r.recipe(&self.backbone).map_err(|e| format!("{what}: {e}"))?;
            crate::eval::search::parse_keys(r.search.as_deref().unwrap_or_default()).map_err(|e| format!("{what}: {e}"))?;
        }
        // Probed layers must be blobs of the network (checked where the
        // architecture is built in; a prototxt path is read at run time).
        if let Ok(arch) = self.backbone.parse::<crate::model::Arch>() {
            if !matches!(arch, crate::model::Arch::Prototxt(_)) {
                let blobs = arch.spec().map_err(|e| e.to_string())?.blob_names();
                let quick = self.quick.probe_layers.iter().flatten();
                if let Some(unknown) = self.probes.layers.iter().chain(quick).find(|l| !blobs.contains(l)) {
                    return Err(format!("probe layer {unknown:?} is not a blob of {} (e.g. {})", self.backbone, blobs.iter().rev().take(4).cloned().collect::<Vec<_>>().join(", ")));
                }
            }
        }
        let mut names: Vec<&str> = self.surgery.iter().map(|v| v.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("surgery variant {:?} is listed twice", w[0]));
        }
        if let Some(q) = &self.quick.surgery {
            if let Some(unknown) = q.iter().find(|n| !self.surgery.iter().any(|v| &v.name == *n)) {
                return Err(format!("[quick] surgery names {unknown:?}, which is not a [[surgery]] variant"));
            }
        }
        Ok(())
    }

    /// The experiment `--quick` runs: fewer folds and epochs, fewer variants and layers.
    pub fn quick(&self) -> Experiment {
        let mut q = self.clone();
        let epochs = self.quick.epochs;
        let paper_step = SolverSettings::default().step_epochs;
        q.finetune.epochs = Some(epochs);
        q.finetune.step_epochs = Some(q.finetune.step_epochs.unwrap_or(paper_step).min(epochs));
        let keep: Vec<String> = self.quick.surgery.clone().unwrap_or_else(|| self.surgery.iter().take(1).map(|v| v.name.clone()).collect());
        q.surgery.retain(|v| keep.contains(&v.name));
        for v in &mut q.surgery {
            v.recipe.epochs = Some(epochs);
            v.recipe.step_epochs = Some(v.recipe.step_epochs.unwrap_or(paper_step).min(epochs));
        }
        if let Some(layers) = &self.quick.probe_layers {
            q.probes.layers = layers.clone();
        }
        q
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Experiment, ExperimentError> {
        Experiment::parse(text, Path::new("exp.toml"))
    }

    #[test]
    fn unset_fields_are_the_papers_settings() {
        let e = parse("title = \"t\"\nbackbone = \"caffenet\"\n[[surgery]]\nname = \"fc6-2\"\n[[surgery]]\nname = \"fc7-2\"\n").unwrap();
        assert_eq!(e.finetune.recipe("caffenet").unwrap(), crate::train::Recipe::default());
        assert_eq!(e.data.subset, Subset::Five);
        assert!(e.probes.pretrained && e.probes.finetuned && e.probes.layers.is_empty());
        // fc6-2 keeps the paper's own base rate, fc7-2 the default.
        let lr = |v: &Variant| v.recipe(&e.finetune).recipe("caffenet").unwrap().solver.base_lr;
        assert_eq!((lr(&e.surgery[0]), lr(&e.surgery[1])), (1e-4, 1e-3));
    }

    #[test]
    fn variants_inherit_and_override_the_recipe_and_quick_shrinks() {
        let e = parse(
            "title = \"t\"\nbackbone = \"squeezenet1.0\"\n[finetune]\nsurgery = \"lpft\"\nbase_lr = 1e-5\nepochs = 8\nhead_init = \"probe\"\n\
             [[surgery]]\nname = \"fire9-2\"\nbase_lr = 1e-6\n[[surgery]]\nname = \"conv10-1000\"\n[quick]\nfolds = [2]\nepochs = 0.5\nsurgery = [\"conv10-1000\"]\n",
        )
        .unwrap();
        let r = e.surgery[0].recipe(&e.finetune);
        assert_eq!((r.surgery(), r.base_lr, r.epochs, r.head_init), ("fire9-2", Some(1e-6), Some(8.0), Some(crate::train::HeadInit::Probe)));
        assert_eq!(e.surgery[1].recipe(&e.finetune).base_lr, Some(1e-5));
        let q = e.quick();
        assert_eq!(q.surgery.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["conv10-1000"]);
        assert_eq!((q.finetune.epochs, q.finetune.step_epochs), (Some(0.5), Some(0.5)));
        assert_eq!(q.surgery[0].recipe(&q.finetune).epochs, Some(0.5));
    }

    #[test]
    fn mistakes_name_the_line_or_the_field() {
        let err = parse("title = \"t\"\nbackbone = \"caffenet\"\n\n[finetune]\nepoch = 3\n").unwrap_err().to_string();
        assert!(err.starts_with("exp.toml:5:") && err.contains("epoch"), "{err}");
        let err = parse("title = \"t\"\nbackbone = \"caffenet\"\n[[surgery]]\nname = \"fire9-2\"\n").unwrap_err().to_string();
        assert!(err.contains("surgery fire9-2"), "{err}");
        let err = parse("title = \"t\"\nbackbone = \"caffenet\"\n[probes]\nlayers = [\"conv9\"]\n").unwrap_err().to_string();
        assert!(err.contains("conv9"), "{err}");
        let err = parse("title = \"t\"\nbackbone = \"caffenet\"\n[[surgery]]\nname = \"fc7-2\"\n[[surgery]]\nname = \"fc7-2\"\n").unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
