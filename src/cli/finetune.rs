use super::data::DataArgs;
use super::model_args::ModelArgs;
use super::recipe_args::RecipeArgs;
use anyhow::{Context, Result};
use clap::Args;
use deepsent::eval::recipe::Recipe;
use deepsent::model::saved::{ModelCard, SavedModel};
use deepsent::preprocess::{ImageCache, DEFAULT_MAX_PIXELS};
use std::path::PathBuf;
use std::process::ExitCode;

/// Fine-tune one model on every image of a dataset (for `predict` and `serve`).
#[derive(Args)]
pub struct FinetuneArgs {
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
    let (backbone, weights) = a.model.load()?;
    let ops = a.recipe.ops(&a.model.arch)?;
    let req = a.data.request()?;
    let dataset = deepsent::data::load(&req).into_result()?;
    let paths: Vec<PathBuf> = dataset.items.iter().map(|i| i.path.clone()).collect();
    let cache = ImageCache::build(&paths, &backbone.preprocess, DEFAULT_MAX_PIXELS)?;
    let (chosen, seed, part): (Vec<usize>, u64, String) = match a.fold {
        Some(k) => {
            let fold = dataset.fold(k).with_context(|| format!("{} has no fold {k}", dataset.name))?;
            (fold.train.clone(), a.recipe.seed.wrapping_add(k as u64), format!("fold {k} train part, {} images", fold.train.len()))
        }
        None => ((0..dataset.items.len()).collect(), a.recipe.seed, format!("{} images", dataset.items.len())),
    };
    let images: Vec<&image::RgbImage> = chosen.iter().map(|&i| &cache.images[i]).collect();
    let labels: Vec<usize> = chosen.iter().map(|&i| dataset.items[i].label.index()).collect();
    let solver = a.recipe.solver_settings(&a.model.arch);
    let recipe = Recipe { backbone: &backbone, ops: &ops, solver: &solver, head_init: a.recipe.head_init, new_lr_mult: a.recipe.new_lr_mult, eval_batch: a.eval_batch };
    let run_dir = a.out.with_extension("run");
    let trained = recipe.train("finetune", seed, &images, &labels, &run_dir, |_| None)?;
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
            ..ModelCard::new(
                a.model.arch.name(),
                weights.display().to_string(),
                format!("{} ({part}, {})", dataset.name, req.root.display()),
                deepsent::model::surgery::ops_text(&ops),
                serde_json::json!({ "solver": solver, "head_init": a.recipe.head_init, "new_lr_mult": a.recipe.new_lr_mult, "seed": a.recipe.seed }),
            )
        },
    };
    model.save(&a.out)?;
    println!("saved {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
