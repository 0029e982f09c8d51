//! Runs an experiment into a report directory: Table 1's cross-validation,
//! the probes of Table 2 and the surgery variants of Tables 3–4, each in its
//! own resumable run directory under `REPORT/runs/`, then the report.
//! Running it again skips what is complete and resumes what is half done
//! (the runs themselves resume; this file only orders them).

use super::Experiment;
use super::workbench::Workbench;
use crate::data::{DataRequest, Dataset};
use crate::eval::crossval::{Crossval, CrossvalConfig, CrossvalResults};
use crate::eval::linear::CSearch;
use crate::eval::probe::{probe_run, Probe, ProbeReport, ProbeSettings};
use crate::eval::run_dir::RunDir;
use crate::model::Arch;
use crate::preprocess::ImageCache;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
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
    /// How long a job's lease lives without a heartbeat (see `super::lease`).
    pub lease: std::time::Duration,
    /// Where the networks run.
    pub device: crate::model::device::DeviceChoice,
}

/// Everything a report is made from.
pub struct Outcome {
    pub experiment: Experiment,
    pub quick: bool,
    pub dataset: Dataset,
    /// The decoded images (for predictions of runs made before they were kept).
    pub cache: ImageCache,
    pub device: burn::prelude::Device,
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

/// Runs the whole experiment in this process (taking the jobs that no other
/// worker holds, and waiting for those that one does), then gathers it.
pub fn run(original: &Experiment, out: &Path, options: &Options) -> Result<Outcome> {
    let t0 = std::time::Instant::now();
    let study = Study::open(original, out, options)?;
    super::jobs::work(&study, &super::jobs::Target::All)?;
    study.gather(t0)
}

/// One fine-tuning cross-validation of a study: Table 1's or a surgery variant's.
pub struct StudyRun {
    /// `finetune`, or `surgery/<variant>`: the prefix of its jobs' ids.
    pub name: String,
    /// What the report calls it (Table 1 or the variant's name).
    pub title: String,
    pub dir: PathBuf,
    pub ops: Vec<crate::model::surgery::Op>,
    pub config: CrossvalConfig,
}

/// An experiment opened in its report directory, ready to run any of its
/// jobs (`super::jobs`) or to gather them into an [`Outcome`].
pub struct Study {
    pub experiment: Experiment,
    pub out: PathBuf,
    pub options: Options,
    pub bench: Workbench,
    pub folds: Vec<usize>,
    /// Table 1's run first, then the surgery variants in the file's order.
    pub runs: Vec<StudyRun>,
    pub probe_settings: ProbeSettings,
}

impl Study {
    /// Pins the experiment in `out`, finds (or fetches) its data and
    /// weights, decodes the images and resolves every run's recipe.
    pub fn open(original: &Experiment, out: &Path, options: &Options) -> Result<Study> {
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
        let req = DataRequest { root: data_root_or_fetch(exp.data.root.as_deref())?, subset: exp.data.subset, folds: exp.data.fold_source(), extra_train: exp.data.extra_train };
        let bench = Workbench::prepare(arch, weights, &req, options.device.device().map_err(anyhow::Error::msg)?)?;
        let folds: Vec<usize> = if options.quick { exp.quick.folds.clone() } else { bench.all_folds() };
        let backbone = bench.arch.name();
        let mut runs = Vec::new();
        let recipes = std::iter::once(("finetune".to_string(), format!("Table 1: fine-tuning `{}`", exp.finetune.surgery()), finetune_dir(out), exp.finetune.clone()))
            .chain(exp.surgery.iter().map(|v| {
                let recipe = v.recipe(&exp.finetune);
                (format!("surgery/{}", v.name), format!("Tables 3–4: surgery variant {} (`{}`)", v.name, recipe.surgery()), variant_dir(out, &v.name), recipe)
            }));
        for (name, title, dir, overrides) in recipes {
            let (recipe, ops) = overrides.recipe(&backbone).map_err(anyhow::Error::msg)?.resolved(&backbone)?;
            let search = crate::eval::search::parse_keys(overrides.search.as_deref().unwrap_or_default()).map_err(anyhow::Error::msg)?;
            let config = bench.crossval_config(recipe, folds.clone(), search, overrides.holdout.unwrap_or(crate::eval::search::DEFAULT_HOLDOUT), overrides.inner_folds.unwrap_or(0));
            config.check_selection().with_context(|| format!("{name}: search, holdout, inner_folds"))?;
            runs.push(StudyRun { name, title, dir, ops, config });
        }
        let probe_settings = ProbeSettings { layers: exp.probes.layers.clone(), classifiers: exp.probes.classifiers.clone(), search: CSearch { inner_folds: exp.probes.inner_folds, ..CSearch::default() } };
        Ok(Study { experiment: exp, out: out.to_path_buf(), options: options.clone(), bench, folds, runs, probe_settings })
    }

    pub fn crossval<'a>(&'a self, run: &'a StudyRun) -> Crossval<'a> {
        self.bench.crossval(&run.ops, run.config.clone(), self.options.eval_batch)
    }

    /// A probe of these folds with the experiment's settings.
    pub fn probe(&self, folds: Vec<usize>) -> Probe<'_> {
        Probe { dataset: &self.bench.dataset, cache: &self.bench.cache, folds, settings: self.probe_settings.clone(), batch: self.options.eval_batch, memory_bytes: self.options.probe_memory, export: None, device: &self.bench.device }
    }

    /// Which probes the experiment asks for: (pretrained?) in report order.
    pub fn probe_kinds(&self) -> Vec<bool> {
        [(true, self.experiment.probes.pretrained), (false, self.experiment.probes.finetuned)].into_iter().filter(|(_, wanted)| *wanted).map(|(p, _)| p).collect()
    }

    /// Gathers every run and probe into the report's outcome (running,
    /// in this process, whatever is not done yet).
    pub fn gather(self, t0: std::time::Instant) -> Result<Outcome> {
        let mut gathered = Vec::new();
        for run in &self.runs {
            gathered.push(self.crossval(run).run(&run.dir)?);
        }
        let ft_dir = self.runs[0].dir.clone();
        let mut probes = Vec::new();
        for pretrained in self.probe_kinds() {
            let report = probe_run(&self.probe(self.folds.clone()), &ft_dir, &self.runs[0].config, &self.bench.backbone, pretrained)?;
            probes.push((RunDir::new(&ft_dir).probe_stem(pretrained), report));
        }
        let mut gathered = gathered.into_iter();
        let finetune = (ft_dir, gathered.next().expect("Table 1's run"));
        let surgery = self.experiment.surgery.iter().zip(&self.runs[1..]).zip(gathered).map(|((v, run), results)| (v.name.clone(), run.dir.clone(), results)).collect();
        let Study { experiment, options, bench, .. } = self;
        Ok(Outcome {
            experiment,
            quick: options.quick,
            dataset: bench.dataset,
            cache: bench.cache,
            device: bench.device,
            finetune,
            probes,
            surgery,
            weights: bench.weights,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
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
