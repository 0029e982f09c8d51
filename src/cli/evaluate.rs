use crate::cli::data::DataArgs;
use anyhow::{Context, Result};
use clap::Args;
use deepsent::eval::evaluate::evaluate;
use deepsent::model::saved::SavedModel;
use deepsent::model::Net;
use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluate a trained model on a labelled image set: accuracy, balanced
/// accuracy, ROC and PR AUC, per-class precision/recall/F1, log loss, Brier
/// score and calibration error, each with a bootstrap 95 % interval.
#[derive(Args)]
pub struct EvaluateArgs {
    /// A model saved by `finetune` or `crossval` (.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Images and labels: the Twitter layout, a folder of positive/ and
    /// negative/, or a CSV of path,label [default: $DEEPSENT_DATA, else
    /// ../shared/data/twitter, else the deepsent home].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Twitter agreement subset [default: five]. The Twitter layout only.
    #[arg(long, value_parser = crate::cli::enum_value::<deepsent::data::Subset>)]
    subset: Option<deepsent::data::Subset>,
    /// Also score the 10-crop average (4 corners + centre, mirrored).
    #[arg(long)]
    oversample: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Write metrics.json (every metric and every image's score) and metrics.md here.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: EvaluateArgs) -> Result<ExitCode> {
    let model = SavedModel::load(&a.model)?;
    // The whole set is scored: no folds are drawn (the layout checks of the data commands apply).
    let data = DataArgs { root: a.root, subset: a.subset, folds: None, k: None, split_seed: None };
    let req = deepsent::data::DataRequest { folds: deepsent::data::FoldSource::None, ..data.request()? };
    let dataset = deepsent::data::load(&req).into_result()?;
    let net = Net::new(model.spec, &model.weights, &burn::prelude::Device::flex())?;
    deepsent::serve::predict::check_finite(&net, &model.preprocess)?;
    let evaluation = evaluate(&net, &model.preprocess, &dataset.items, a.oversample, a.batch)?;
    let md = deepsent::report::evaluation::markdown(&evaluation, &a.model.display().to_string(), &dataset.name);
    print!("{md}");
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        deepsent::atomic_write::write(&out.join("metrics.json"), serde_json::to_string_pretty(&evaluation)? + "\n")?;
        deepsent::atomic_write::write(&out.join("metrics.md"), md)?;
        eprintln!("wrote {0}/metrics.json and {0}/metrics.md", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
