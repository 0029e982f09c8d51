use crate::cli::data::DataArgs;
use anyhow::{Context, Result};
use clap::Args;
use anyhow::bail;
use deepsent::eval::evaluate::{fit, measure, score_items};
use deepsent::model::calibration::{prior_shift, Calibration};
use deepsent::model::saved::SavedModel;
use deepsent::model::Net;
use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluate a trained model on a labelled image set: accuracy, balanced
/// accuracy, ROC and PR AUC, per-class precision/recall/F1, log loss, Brier
/// score and calibration error, each with a bootstrap 95 % interval.
#[derive(Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    /// A model saved by `finetune` or `crossval` (.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Images and labels: the Twitter layout, a folder of positive/ and
    /// negative/, a CSV of path,label, or a label file of `name 0|1` lines
    /// (names may hold spaces and relative paths) beside the images
    /// [default: $DEEPSENT_DATA, else ../shared/data/twitter, else the deepsent home].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Twitter agreement subset [default: five]. The Twitter layout only.
    #[arg(long, value_parser = crate::cli::enum_value::<deepsent::data::Subset>)]
    subset: Option<deepsent::data::Subset>,
    /// Leave out the images of this Twitter subset: `--subset four --exclude
    /// five` is the four-agree remainder, harder images than the five-agree
    /// ones the models are trained on. The Twitter layout only.
    #[arg(long, value_parser = crate::cli::enum_value::<deepsent::data::Subset>)]
    exclude: Option<deepsent::data::Subset>,
    /// Also score the 10-crop average (4 corners + centre, mirrored).
    #[arg(long)]
    oversample: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Fit a calibration on these labelled images (any layout, disjoint from
    /// the evaluated ones): a temperature on the log-odds, then the threshold
    /// of best balanced accuracy. Needs --write-model.
    #[arg(long, requires = "write_model")]
    calibrate: Option<PathBuf>,
    /// Correct the scores for a set where this share of the images is
    /// positive (the model's card records the share it was trained on).
    /// Needs --write-model.
    #[arg(long, requires = "write_model")]
    prior: Option<f64>,
    /// The share of positive training images, for a model whose card does not record it.
    #[arg(long)]
    trained_prior: Option<f64>,
    /// Where the calibrated model goes (the same network and weights, its card carrying the calibration).
    #[arg(long)]
    write_model: Option<PathBuf>,
    /// Write metrics.json (every metric and every image's score), metrics.md
    /// and the ROC, precision-recall and reliability plots (PNG and SVG) here.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: EvaluateArgs) -> Result<ExitCode> {
    let mut model = SavedModel::load(&a.model)?;
    let dataset = load(a.root.clone(), a.subset, a.exclude)?;
    let net = Net::new(model.spec.clone(), &model.weights, &a.device.device()?)?;
    deepsent::serve::predict::check_finite(&net, &model.preprocess)?;
    let raw = score_items(&net, &model.preprocess, &dataset.items, a.oversample, a.batch)?;
    let fitting = a.calibrate.is_some() || a.prior.is_some();
    let calibration = if fitting { Some(fit_calibration(&a, &model, &net, &dataset)?) } else { model.card.calibration.clone() };
    let evaluation = measure(&raw, calibration.as_ref());
    let mut md = deepsent::report::evaluation::markdown(&evaluation, &a.model.display().to_string(), &dataset.name);
    if fitting {
        // What changed: the same images, through the network's raw scores and through the new calibration.
        let before = measure(&raw, None);
        md += &deepsent::report::evaluation::calibration_change(&before, &evaluation);
        let path = a.write_model.as_ref().expect("checked by clap");
        model.card.calibration = calibration;
        model.save(path)?;
        eprintln!("wrote the calibrated model {} (predict and serve apply its calibration)", path.display());
    }
    print!("{md}");
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        deepsent::atomic_write::write(&out.join("metrics.json"), serde_json::to_string_pretty(&evaluation)? + "\n")?;
        deepsent::atomic_write::write(&out.join("metrics.md"), md)?;
        let title = format!("{}, {}", dataset.name, a.model.file_stem().unwrap_or_default().to_string_lossy());
        deepsent::report::evaluation_plots::evaluation_plots(&evaluation, &title, out)?;
        eprintln!("wrote {0}/metrics.json, metrics.md and the ROC, precision-recall and reliability plots ({0}/roc.png, pr.png, reliability.png, and .svg)", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A labelled set as `evaluate` reads it: the whole set (no folds), less an excluded Twitter subset.
fn load(root: Option<PathBuf>, subset: Option<deepsent::data::Subset>, exclude: Option<deepsent::data::Subset>) -> Result<deepsent::data::Dataset> {
    let data = DataArgs { root, subset, folds: None, k: None, split_seed: None, extra_train: None };
    let req = deepsent::data::DataRequest { folds: deepsent::data::FoldSource::None, ..data.request()? };
    let mut dataset = deepsent::data::load(&req).into_result()?;
    if let Some(exclude) = exclude {
        anyhow::ensure!(deepsent::data::Layout::detect(&req.root) == Some(deepsent::data::Layout::Twitter), "--exclude applies only to the Twitter dataset");
        dataset = deepsent::data::twitter::without_subset(dataset, &req.root, exclude).into_result()?;
    }
    anyhow::ensure!(!dataset.items.is_empty(), "no images in {}", dataset.name);
    Ok(dataset)
}

/// The calibration `--calibrate` and `--prior` ask for, fitted on the
/// calibration images' raw scores (never on the images evaluated: the two
/// sets must not share an image).
fn fit_calibration(a: &EvaluateArgs, model: &SavedModel, net: &Net, evaluated: &deepsent::data::Dataset) -> Result<Calibration> {
    // (trained share, target share) of positives, for a prior correction.
    let prior = match a.prior {
        Some(target) => {
            anyhow::ensure!(target > 0.0 && target < 1.0, "--prior is the share of positive images, strictly between 0 and 1 (not {target})");
            let trained = a.trained_prior.or(model.card.trained_positive_share).with_context(|| {
                format!("{} does not record the share of positive images it was trained on (made before model cards recorded it); give it with --trained-prior", a.model.display())
            })?;
            Some((trained, target))
        }
        None => None,
    };
    let shift = prior.map_or(0.0, |(trained, target)| prior_shift(trained, target));
    let prior_words = prior.map(|(trained, target)| format!("prior corrected from {trained:.3} to {target:.3} positive")).unwrap_or_default();
    let Some(root) = &a.calibrate else {
        return Ok(Calibration { temperature: 1.0, shift, threshold: 0.5, fitted: prior_words });
    };
    let calibration_set = load(Some(root.clone()), a.subset, None)?;
    let shared = deepsent::data::dataset::shared_images(&calibration_set.items, &evaluated.items);
    if !shared.is_empty() {
        let list: Vec<&str> = shared.iter().take(5).map(String::as_str).collect();
        let more = if shared.len() > 5 { ", …" } else { "" };
        bail!("the calibration set {} and the evaluated set share {} image(s) ({}{more}): a calibration fitted on the images it is judged on would flatter itself; give disjoint sets", root.display(), shared.len(), list.join(", "));
    }
    let raw = score_items(net, &model.preprocess, &calibration_set.items, a.oversample, a.batch)?;
    let view = if a.oversample { "10-crop" } else { "centre crop" };
    let prior_words = if prior_words.is_empty() { prior_words } else { format!(", {prior_words}") };
    Ok(fit(&raw, shift, format!("temperature and threshold fitted on {} ({} images, {view}){prior_words}", calibration_set.name, raw.len())))
}
