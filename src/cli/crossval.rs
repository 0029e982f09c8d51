use super::data::DataArgs;
use super::model_args::ModelArgs;
use super::recipe_args::RecipeArgs;
use anyhow::{Context, Result};
use clap::Args;
use deepsent::eval::search::SearchKey;
use deepsent::experiment::workbench::Workbench;
use std::path::PathBuf;
use std::process::ExitCode;

/// Fine-tune and evaluate on every fold (the paper's Table 1).
#[derive(Args)]
pub struct CrossvalArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Run directory: results, logs, checkpoints, one model per fold. Run the
    /// same command again to resume.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Only these folds (e.g. 1,3) [default: all].
    #[arg(long, value_delimiter = ',')]
    fold: Vec<usize>,
    /// Images per test-time forward pass.
    #[arg(long, default_value_t = 16)]
    eval_batch: usize,
    /// Choose a setting per fold by nested search: KEY=V1,V2,… (repeatable;
    /// every combination is tried), e.g. --search base_lr=1e-4,1e-3. Each
    /// value is trained on the fold's training part less a held-out slice and
    /// scored on that slice; the outer test part is never used to choose.
    #[arg(long, value_name = "KEY=V1,V2")]
    search: Vec<SearchKey>,
    /// Fraction of each fold's training part held out to score --search.
    #[arg(long, default_value_t = deepsent::eval::search::DEFAULT_HOLDOUT)]
    holdout: f64,
    /// Score --search by K stratified inner folds of each fold's training part
    /// (the mean of K held-out scores) instead of one held-out slice.
    #[arg(long, value_name = "K", default_value_t = 0)]
    inner_folds: usize,
}

pub fn run(a: CrossvalArgs) -> Result<ExitCode> {
    let (recipe, ops) = a.recipe.overrides().recipe(&a.model.arch.name()).map_err(anyhow::Error::msg)?.resolved(&a.model.arch.name())?;
    let bench = Workbench::prepare(a.model.arch.clone(), a.model.weights_path()?, &a.data.request()?, a.device.device()?)?;
    let folds = if a.fold.is_empty() { bench.all_folds() } else { a.fold.clone() };
    let config = bench.crossval_config(recipe, folds, a.search.clone(), a.holdout, a.inner_folds);
    config.check_selection().context("--holdout, --inner-folds, --search")?;
    let r = bench.crossval(&ops, config, a.eval_batch).run(&a.out)?;
    println!("fold  centre  10-crop");
    for f in &r.folds {
        let mark = |s: &deepsent::eval::metrics::Scored| if s.degenerate.is_some() { " (degenerate)" } else { "" };
        println!("{:>4}  {:.3}{}  {:.3}{}", f.fold, f.acc_center, mark(&f.center), f.acc_oversample, mark(&f.oversample));
    }
    println!("mean  {:.3} ± {:.3}  {:.3} ± {:.3}   (std over folds, population)", r.mean_center, r.std_center, r.mean_oversample, r.std_oversample);
    if !r.degenerate_folds.is_empty() {
        println!("degenerate folds (tied or constant answers): {:?}", r.degenerate_folds);
    }
    if r.did_not_move() {
        println!("the network did not move (test accuracy within one image of before training on every fold): this is a linear probe, not fine-tuning");
    } else if !r.unmoved_folds.is_empty() {
        println!("folds where the network did not move: {:?}", r.unmoved_folds);
    }
    let command = super::command_line();
    deepsent::report::write_crossval(&r, &a.out, &command)?;
    let run = deepsent::eval::run_dir::RunDir::new(&a.out);
    println!("results: {} and {}", run.results().display(), run.results_md().display());
    Ok(ExitCode::SUCCESS)
}
