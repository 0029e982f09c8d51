use super::data::DataArgs;
use super::model_args::ModelArgs;
use super::recipe_args::RecipeArgs;
use anyhow::{Context, Result};
use clap::Args;
use deepsent::eval::finetune::FineTuning;
use deepsent::model::saved::{ModelCard, SavedModel};
use deepsent::experiment::workbench::Workbench;
use std::path::PathBuf;
use std::process::ExitCode;

/// Fine-tune one model on every image of a dataset (for `predict` and `serve`).
#[derive(Args)]
pub struct FinetuneArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Where to save the model (.safetensors); checkpoints and the training
    /// log go to OUT.run/, and the same command resumes from them.
    #[arg(long)]
    out: PathBuf,
    /// A cross-validation run of the same recipe (its results.json), whose
    /// mean accuracy goes into the model card.
    #[arg(long)]
    cv: Option<PathBuf>,
    #[arg(long, default_value_t = 16)]
    eval_batch: usize,
    /// Train on this fold's training part only, exactly as `crossval` trains
    /// its fold K (same seed offset): the model to check `predict` against
    /// the fold's test part.
    #[arg(long)]
    fold: Option<usize>,
}

pub fn run(a: FinetuneArgs) -> Result<ExitCode> {
    let (recipe, ops) = a.recipe.overrides().recipe(&a.model.arch.name()).map_err(anyhow::Error::msg)?.resolved(&a.model.arch.name())?;
    let bench = Workbench::prepare(a.model.arch.clone(), a.model.weights_path()?, &a.data.request()?, a.device.device()?)?;
    let (backbone, dataset, cache) = (&bench.backbone, &bench.dataset, &bench.cache);
    let (chosen, seed, part): (Vec<usize>, u64, String) = match a.fold {
        Some(k) => {
            let fold = dataset.fold(k).with_context(|| format!("{} has no fold {k}", dataset.name))?;
            (fold.train.clone(), recipe.seed.wrapping_add(k as u64), format!("fold {k} train part, {} images", fold.train.len()))
        }
        None => ((0..dataset.items.len()).collect(), recipe.seed, format!("{} images", dataset.items.len())),
    };
    let images: Vec<&image::RgbImage> = chosen.iter().map(|&i| &cache.images[i]).collect();
    let labels: Vec<usize> = chosen.iter().map(|&i| dataset.items[i].label.index()).collect();
    let run_dir = deepsent::train::TrainDir::new(a.out.with_extension("run"));
    let trained = FineTuning { backbone, ops: &ops, recipe: &recipe, eval_batch: a.eval_batch, device: &bench.device }.train("finetune", seed, &images, &labels, &run_dir, |_| None)?;
    let cv_accuracy = match &a.cv {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let r: deepsent::eval::crossval::CrossvalResults = serde_json::from_str(&text).with_context(|| format!("{} is not a crossval results.json", p.display()))?;
            Some(r.mean_center)
        }
        None => None,
    };
    let model = SavedModel {
        spec: trained.net.spec.clone(),
        weights: trained.net.weights(),
        preprocess: backbone.preprocess.clone(),
        card: ModelCard {
            cv_accuracy,
            trained_positive_share: Some(deepsent::eval::crossval::positive_share(&labels)),
            ..ModelCard::new(
                a.model.arch.name(),
                bench.weights_id.clone(),
                format!("{} ({part})", bench.described),
                recipe.surgery.clone(),
                serde_json::to_value(&recipe)?,
            )
        },
    };
    model.save(&a.out)?;
    println!("saved {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
