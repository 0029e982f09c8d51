use super::data::DataArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use deepsent::eval::crossval::CrossvalConfig;
use deepsent::eval::linear::{CSearch, Classifier};
use deepsent::eval::probe::{probe_run, Probe, ProbeSettings};
use deepsent::eval::run_dir::RunDir;
use deepsent::experiment::workbench::Workbench;
use deepsent::model::Arch;
use std::path::PathBuf;
use std::process::ExitCode;

/// Linear probes on every layer of a cross-validation run's models.
#[derive(Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    /// A `crossval` run directory (its config names backbone, weights and folds).
    #[arg(long)]
    run: PathBuf,
    /// Probe the un-tuned ImageNet model the run started from, instead of each fold's fine-tuned model.
    #[arg(long)]
    pretrained: bool,
    /// Layer outputs to probe, comma-separated, or `all` (every blob all paths pass through).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    layers: Vec<String>,
    /// Classifiers: svm (linear SVM, squared hinge) and/or softmax (logistic regression).
    #[arg(long, value_delimiter = ',', default_value = "svm,softmax")]
    classifiers: Vec<ClassifierArg>,
    /// Only these folds [default: the run's].
    #[arg(long, value_delimiter = ',')]
    fold: Vec<usize>,
    /// Inner folds for choosing C on each fold's training part.
    #[arg(long, default_value_t = 3)]
    inner_folds: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Memory for layer features held at once, in GiB (larger layers run alone).
    #[arg(long, default_value_t = 4.0)]
    memory_gib: f64,
    /// Also write each layer's flattened features as DIR/[foldK/]<layer>.npy,
    /// with labels.npy and images.txt.
    #[arg(long)]
    export_features: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// The run's ImageNet weights [default: the architecture's own, checked
    /// against the file name and SHA-256 the run recorded].
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Models directory [default: $DEEPSENT_MODELS, else ../shared/models]
    #[arg(long)]
    models: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ClassifierArg {
    Svm,
    Softmax,
}

pub fn run(a: ProbeArgs) -> Result<ExitCode> {
    let run = RunDir::new(&a.run);
    let config: CrossvalConfig = run.read_config()?.with_context(|| format!("{} has no config.json: is --run a crossval run directory?", a.run.display()))?;
    let arch: Arch = config.backbone.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let candidate = match &a.weights {
        Some(w) => Some(w.clone()),
        None => deepsent::locate::models_dir(a.models.as_deref()).ok().and_then(|m| arch.default_weights(&m)),
    };
    let weights = deepsent::model::weights_id::find(&config.weights, candidate).map_err(|e| anyhow::anyhow!("{e}: pass the run's weights with --weights"))?;
    let bench = Workbench::prepare(arch, weights, &a.data.request()?, a.device.device()?)?;
    if bench.described != config.dataset {
        bail!("{} was run on {}, not {}: pass the same data flags (--root, --subset, --folds)", a.run.display(), config.dataset, bench.described);
    }
    let layers = if a.layers.iter().any(|l| l == "all") { Vec::new() } else { a.layers.clone() };
    let classifiers = a.classifiers.iter().map(|c| match c {
        ClassifierArg::Svm => Classifier::Svm,
        ClassifierArg::Softmax => Classifier::Softmax,
    });
    let settings = ProbeSettings {
        layers,
        classifiers: classifiers.collect(),
        search: CSearch { inner_folds: a.inner_folds, ..CSearch::default() },
    };
    let probe = Probe {
        dataset: &bench.dataset,
        cache: &bench.cache,
        folds: if a.fold.is_empty() { config.folds.clone() } else { a.fold.clone() },
        settings,
        batch: a.batch,
        memory_bytes: (a.memory_gib * (1u64 << 30) as f64) as usize,
        export: a.export_features.clone(),
        device: &bench.device,
    };
    let command = super::command_line();
    let report = probe_run(&probe, &a.run, &config, &bench.backbone, a.pretrained)?;
    let stem = run.probe_stem(a.pretrained);
    deepsent::report::write_probe(&report, &stem, &command)?;
    let table = deepsent::report::tables::probe_table(&report, &command);
    println!("{table}");
    println!("results: {0}.json, .md, .png and .svg", stem.display());
    Ok(ExitCode::SUCCESS)
}
