//! Runs an experiment into a report directory: Table 1's cross-validation,
//! the probes of Table 2 and the surgery variants of Tables 3–4, each in its
//! own resumable run directory under `REPORT/runs/`, then the report.
//! Running it again skips what is complete and resumes what is half done
//! (the runs themselves resume; this file only orders them).

use super::Experiment;
use super::workbench::Workbench;
use crate::data::{DataRequest, Dataset};
use crate::eval::crossval::CrossvalResults;
use crate::eval::linear::CSearch;
use crate::eval::probe::{probe_run, Probe, ProbeReport, ProbeSettings};
use crate::eval::run_dir::RunDir;
use crate::model::Arch;
use crate::preprocess::ImageCache;
use crate::train::RecipeOverrides;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub struct Options {
    pub quick: bool,
    /// Models directory for the backbone's default weights.
    pub models: Option<PathBuf>,
    /// Images per test-time forward pass.
    pub eval_batch: usize,
    /// Memory for probe features, bytes.
    pub probe_memory: usize,
    /// The command line, for the report.
    pub command: String,
}

/// Everything a report is made from.
pub struct Outcome {
    pub experiment: Experiment,
    pub quick: bool,
    pub dataset: Dataset,
    /// The decoded images (for predictions of runs made before they were kept).
    pub cache: ImageCache,
    pub finetune: (PathBuf, CrossvalResults),
    pub probes: Vec<(PathBuf, ProbeReport)>,
    pub surgery: Vec<(String, PathBuf, CrossvalResults)>,
    pub weights: PathBuf,
    pub seconds: f64,
}

/// The run directory of Table 1 and of a surgery variant.
pub fn finetune_dir(out: &Path) -> PathBuf {
    out.join("runs").join("finetune")
}
pub fn variant_dir(out: &Path, name: &str) -> PathBuf {
    out.join("runs").join("surgery").join(name)
}

/// The dataset root. On a machine that has none (no flag, variable, `../shared`
/// or earlier fetch), the Twitter dataset is fetched into the deepsent home
/// first, saying so: a fresh clone runs the README's first command as it is.
fn data_root_or_fetch(root: Option<&Path>) -> Result<PathBuf> {
    match crate::locate::data_root(root) {
        Err(crate::locate::LocateError::NotFound { .. }) => {
            let into = crate::download::home().join(crate::locate::TWITTER_IN_HOME);
            eprintln!("no dataset found: fetching the Twitter dataset ({:.0} MB) into {}", crate::data::fetch::twitter_bytes() as f64 / 1e6, into.display());
            crate::data::fetch::fetch_twitter(&into)?;
            Ok(into)
        }
        found => Ok(found?),
    }
}

/// The models directory; on a machine that has none, SqueezeNet v1.0 is
/// fetched into the deepsent home first (the other backbones are fetched
/// where their weights are looked up: `deepsent weights fetch`).
fn models_dir_or_fetch(models: Option<&Path>, arch: &Arch) -> Result<PathBuf> {
    match crate::locate::models_dir(models) {
        Err(crate::locate::LocateError::NotFound { .. }) if *arch == Arch::SqueezeNet10 => {
            let into = crate::download::home().join(crate::locate::MODELS_IN_HOME);
            eprintln!("no models directory found: fetching SqueezeNet v1.0 (0.7 MB) into {}", into.display());
            crate::model::fetch::fetch_squeezenet(&into)?;
            Ok(into)
        }
        found => Ok(found?),
    }
}

pub fn run(original: &Experiment, out: &Path, options: &Options) -> Result<Outcome> {
    let t0 = std::time::Instant::now();
    let exp = if options.quick { original.quick() } else { original.clone() };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    pin_experiment(&exp, options.quick, out)?;

    let arch: Arch = exp.backbone.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let weights = match &exp.weights {
        Some(w) => w.clone(),
        None => {
            let models = models_dir_or_fetch(options.models.as_deref(), &arch)?;
            arch.require_default_weights(&models, "set `weights` in the experiment file").map_err(anyhow::Error::msg)?
        }
    };
    let req = DataRequest { root: data_root_or_fetch(exp.data.root.as_deref())?, subset: exp.data.subset, folds: exp.data.fold_source() };
    let bench = Workbench::prepare(arch, weights, &req)?;
    let folds: Vec<usize> = if options.quick { exp.quick.folds.clone() } else { bench.all_folds() };
    let runs = Runs { bench: &bench, folds: &folds, options };

    let total = 1 + exp.surgery.len();
    step(1, total, &format!("Table 1: fine-tuning `{}`, {} folds", exp.finetune.surgery(), folds.len()));
    let ft_dir = finetune_dir(out);
    let finetune = runs.crossval(&exp.finetune, &ft_dir)?;

    let mut probes = Vec::new();
    let settings = ProbeSettings { layers: exp.probes.layers.clone(), classifiers: exp.probes.classifiers.clone(), search: CSearch { inner_folds: exp.probes.inner_folds, ..CSearch::default() } };
    for (pretrained, wanted) in [(true, exp.probes.pretrained), (false, exp.probes.finetuned)] {
        if !wanted {
            continue;
        }
        eprintln!("\nTable 2: probes of the {} model", if pretrained { "pretrained" } else { "fine-tuned" });
        let probe = Probe { dataset: &bench.dataset, cache: &bench.cache, folds: folds.clone(), settings: settings.clone(), batch: options.eval_batch, memory_bytes: options.probe_memory, export: None };
        let report = probe_run(&probe, &ft_dir, &finetune.config, &bench.backbone, pretrained)?;
        probes.push((RunDir::new(&ft_dir).probe_stem(pretrained), report));
    }

    let mut variants = Vec::new();
    for (i, v) in exp.surgery.iter().enumerate() {
        let recipe = v.recipe(&exp.finetune);
        step(i + 2, total, &format!("Tables 3–4: surgery variant {} (`{}`)", v.name, recipe.surgery()));
        let dir = variant_dir(out, &v.name);
        variants.push((v.name.clone(), dir.clone(), runs.crossval(&recipe, &dir)?));
    }
    Ok(Outcome {
        experiment: exp,
        quick: options.quick,
        dataset: bench.dataset,
        cache: bench.cache,
        finetune: (ft_dir, finetune),
        probes,
        surgery: variants,
        weights: bench.weights,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn step(i: usize, n: usize, what: &str) {
    eprintln!("\n[{i}/{n}] {what}");
}

/// Writes the effective experiment to `REPORT/experiment.toml`, or checks
/// that a report being resumed was started with the same one.
fn pin_experiment(exp: &Experiment, quick: bool, out: &Path) -> Result<()> {
    let text = format!("# The experiment this report runs{}.\n{}", if quick { " (--quick)" } else { "" }, toml::to_string(exp)?);
    let path = out.join("experiment.toml");
    match std::fs::read_to_string(&path) {
        // Compared as experiments, not as text: a field added to the format
        // later (with its default) does not orphan a report in progress.
        Ok(old) => {
            let same = toml::from_str::<Experiment>(&old).is_ok_and(|e| e == *exp) && old.contains("(--quick)") == quick;
            if !same {
                bail!(
                    "{} was started with another experiment (see its experiment.toml{}); use another --out, or delete it to start over",
                    out.display(),
                    if old.contains("(--quick)") != quick { ", made with and without --quick" } else { "" }
                );
            }
            Ok(crate::atomic_write::write(&path, text)?)
        }
        Err(_) => Ok(crate::atomic_write::write(&path, text)?),
    }
}

struct Runs<'a> {
    bench: &'a Workbench,
    folds: &'a [usize],
    options: &'a Options,
}

impl Runs<'_> {
    fn crossval(&self, overrides: &RecipeOverrides, dir: &Path) -> Result<CrossvalResults> {
        let backbone = self.bench.arch.name();
        let (recipe, ops) = overrides.recipe(&backbone).map_err(anyhow::Error::msg)?.resolved(&backbone)?;
        let search = crate::eval::search::parse_keys(overrides.search.as_deref().unwrap_or_default()).map_err(anyhow::Error::msg)?;
        let config = self.bench.crossval_config(recipe, self.folds.to_vec(), search, overrides.holdout.unwrap_or(crate::eval::search::DEFAULT_HOLDOUT));
        self.bench.crossval(&ops, config, self.options.eval_batch).run(dir)
    }
}
