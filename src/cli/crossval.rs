use super::data::DataArgs;
use super::model_args::ModelArgs;
use anyhow::Result;
use clap::Args;
use deepsent::eval::crossval::{Crossval, CrossvalConfig, HeadInit};
use deepsent::model::surgery;
use deepsent::preprocess::{ImageCache, DEFAULT_MAX_PIXELS};
use deepsent::train::SolverSettings;
use std::path::PathBuf;
use std::process::ExitCode;

/// Caffe solver settings; the defaults are the paper's.
#[derive(Args, Clone, Debug)]
pub struct SolverArgs {
    /// Learning rate at the start.
    #[arg(long, default_value_t = 0.001)]
    base_lr: f64,
    /// Multiply the learning rate by --gamma every this many epochs.
    #[arg(long, default_value_t = 6.0)]
    step_epochs: f64,
    #[arg(long, default_value_t = 0.1)]
    gamma: f64,
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    #[arg(long, default_value_t = 5e-4)]
    weight_decay: f64,
    /// Training length in epochs (65 ≈ the authors' 180 iterations of 256 images).
    #[arg(long, default_value_t = 65.0)]
    epochs: f64,
    /// Images per solver iteration.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Images per forward/backward pass (gradients are accumulated to --batch).
    #[arg(long, default_value_t = 32)]
    micro_batch: usize,
}

impl SolverArgs {
    pub fn settings(&self) -> SolverSettings {
        SolverSettings {
            base_lr: self.base_lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            gamma: self.gamma,
            step_epochs: self.step_epochs,
            epochs: self.epochs,
            batch: self.batch,
            micro_batch: self.micro_batch,
        }
    }
}

/// Fine-tune and evaluate on every fold (the paper's Table 1).
#[derive(Args)]
pub struct CrossvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Run directory: results, logs, checkpoints, one model per fold. Run the
    /// same command again to resume.
    #[arg(long)]
    out: PathBuf,
    /// A preset of the backbone (squeezenet1.0: ft, paper; caffenet: ft) or
    /// surgery ops (e.g. replace:fc8:2).
    #[arg(long, default_value = "ft")]
    surgery: String,
    #[command(flatten)]
    solver: SolverArgs,
    /// Seed of every random choice (shuffles, crops, dropout, new weights).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only these folds (e.g. 1,3) [default: all].
    #[arg(long, value_delimiter = ',')]
    fold: Vec<usize>,
    /// How new layers start: random (Gaussian, std 0.01, the paper's) or
    /// probe (the logistic regression on their input features, fitted on the
    /// fold's training part).
    #[arg(long, value_enum, default_value_t = HeadInit::Random)]
    head_init: HeadInit,
    /// Learning-rate multiplier of new layers (the paper's 10).
    #[arg(long, default_value_t = 10.0)]
    new_lr_mult: f32,
    /// Images per test-time forward pass.
    #[arg(long, default_value_t = 16)]
    eval_batch: usize,
}

pub fn run(a: CrossvalArgs) -> Result<ExitCode> {
    let (backbone, weights) = a.model.load()?;
    let ops = surgery::resolve(&a.model.arch.name(), &a.surgery)?;
    let req = a.data.request()?;
    let dataset = deepsent::data::load(&req).into_result()?;
    let folds = if a.fold.is_empty() { dataset.folds.iter().map(|f| f.number).collect() } else { a.fold.clone() };
    let paths: Vec<PathBuf> = dataset.items.iter().map(|i| i.path.clone()).collect();
    let cache = ImageCache::build(&paths, &backbone.preprocess, DEFAULT_MAX_PIXELS)?;
    let config = CrossvalConfig {
        backbone: a.model.arch.name(),
        weights: weights.display().to_string(),
        dataset: format!("{} ({})", dataset.name, req.root.display()),
        surgery: ops.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(","),
        solver: a.solver.settings(),
        seed: a.seed,
        folds,
        head_init: a.head_init,
        new_lr_mult: a.new_lr_mult,
    };
    let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config, eval_batch: a.eval_batch };
    let r = cv.run(&a.out)?;
    println!("fold  centre  10-crop");
    for f in &r.folds {
        let mark = |s: &deepsent::eval::metrics::Scored| if s.degenerate.is_some() { " (degenerate)" } else { "" };
        println!("{:>4}  {:.3}{}  {:.3}{}", f.fold, f.acc_center, mark(&f.center), f.acc_oversample, mark(&f.oversample));
    }
    println!("mean  {:.3} ± {:.3}  {:.3} ± {:.3}   (std over folds, population)", r.mean_center, r.std_center, r.mean_oversample, r.std_oversample);
    if !r.degenerate_folds.is_empty() {
        println!("degenerate folds (tied or constant answers): {:?}", r.degenerate_folds);
    }
    println!("results: {}", a.out.join("results.json").display());
    Ok(ExitCode::SUCCESS)
}
