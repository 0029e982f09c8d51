use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use deepsent::model::saved::SavedModel;
use deepsent::data::image_files::{is_image_path, ImageKind};
use deepsent::preprocess::decode::decode_file;
use deepsent::preprocess::DEFAULT_MAX_PIXELS;
use deepsent::eval::maps::{image_map, Mapper, Method};
use deepsent::eval::scoring::Views;
use deepsent::report::maps::{unique_stems, write_image_files};
use deepsent::report::overlay::caption;
use deepsent::serve::predict::{Prediction, Predictor};
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

/// Sentiment of images with a fine-tuned model.
#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    /// A model saved by `finetune` or `crossval` (.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Also average the 10 oversampled views (4 corners + centre, mirrored); the label follows them.
    #[arg(long)]
    oversample: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// A label file (`name 0|1` a line, as the Twitter folds; a name may hold
    /// spaces or a relative path such as `joy/1.jpg`): prints the accuracy on
    /// the predicted images it lists.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Also write each image's sentiment map to DIR: NAME.png (the overlay:
    /// red where the model sees positive, blue negative) and NAME.npy (the
    /// map at the image's size); from the 10 views with --oversample.
    #[arg(long, value_name = "DIR")]
    maps: Option<PathBuf>,
    /// How --maps maps: cam, grad-cam, occlusion, rise, extremal or greedy (as `deepsent maps --method`, with their defaults)
    /// [default: CAM where the network ends in global average pooling and
    /// linear layers, else Grad-CAM].
    #[arg(long, requires = "maps", value_parser = super::enum_value::<Method>)]
    map_method: Option<Method>,
    /// Image files or directories (searched recursively for JPEG, PNG, BMP).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Row {
    path: String,
    #[serde(flatten)]
    prediction: Option<Prediction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(a: PredictArgs) -> Result<ExitCode> {
    let predictor = Predictor::new(SavedModel::load(&a.model)?, &a.device.device()?)?;
    let files = collect(&a.paths)?;
    let mapper = match &a.maps {
        Some(_) => Some(Mapper::new(&predictor.net, a.map_method, None).map_err(|e| anyhow::anyhow!("--maps: {e}"))?),
        None => None,
    };
    let stems = unique_stems(&files);
    let bar = deepsent::progress::bar_or_lines(files.len() as u64, "predicting");
    let mut rows: Vec<Row> = Vec::with_capacity(files.len());
    let chunk_len = a.batch.max(1) * 4;
    for (c, chunk) in files.chunks(chunk_len).enumerate() {
        // Decode in parallel; a bad file becomes a row with its error. The
        // decoded image is kept only to draw its map on.
        let decoded: Vec<Result<(image::RgbImage, Option<image::RgbImage>), String>> = chunk
            .par_iter()
            .map(|p| decode_file(p, DEFAULT_MAX_PIXELS).map(|img| (predictor.prepare(&img), mapper.is_some().then_some(img))).map_err(|e| e.to_string()))
            .collect();
        let good: Vec<&image::RgbImage> = decoded.iter().filter_map(|d| d.as_ref().ok().map(|(p, _)| p)).collect();
        let mut predictions = predictor.predict(&good, a.oversample, a.batch).with_context(|| a.model.display().to_string())?.into_iter();
        for (i, (path, d)) in chunk.iter().zip(&decoded).enumerate() {
            let path = path.display().to_string();
            rows.push(match d {
                Ok((prepared, original)) => {
                    let prediction = predictions.next();
                    if let (Some(mapper), Some(dir), Some(original), Some(p)) = (&mapper, &a.maps, original, &prediction) {
                        let views = if a.oversample { Views::TenCrop } else { Views::Center };
                        let m = image_map(mapper, &predictor.preprocess, prepared, views);
                        write_image_files(dir, &stems[c * chunk_len + i], original, &m.map, &caption(p.positive_10crop.unwrap_or(p.positive), p.label, m.views))?;
                    }
                    Row { path, prediction, error: None }
                }
                Err(e) => Row { path, prediction: None, error: Some(e.clone()) },
            });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    print_rows(&rows, a.format)?;
    if let Some(truth) = &a.truth {
        print_accuracy(&rows, truth, a.oversample)?;
    }
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        eprintln!("{failed} of {} image(s) could not be read (see their error)", rows.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Files as given, and the images under directories (sorted, recursive).
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in deepsent::data::image_files::walk(p) {
                let entry = entry.with_context(|| format!("listing {}", p.display()))?;
                if entry.file_type().is_file() && is_image_path(entry.path()) != ImageKind::NotImage {
                    files.push(entry.into_path());
                }
            }
        } else {
            // A named file is always tried: if it is missing or not an image, its row says so.
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        anyhow::bail!("no images (.jpg, .png, .bmp) in {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(files)
}

fn print_rows(rows: &[Row], format: Format) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "results": rows }))?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(["path", "positive", "positive_10crop", "label", "error"])?;
            for r in rows {
                let p = r.prediction.as_ref();
                w.write_record([
                    r.path.clone(),
                    p.map(|p| format!("{:.6}", p.positive)).unwrap_or_default(),
                    p.and_then(|p| p.positive_10crop).map(|v| format!("{v:.6}")).unwrap_or_default(),
                    p.map(|p| p.label.to_string()).unwrap_or_default(),
                    r.error.clone().unwrap_or_default(),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            for r in rows {
                match (&r.prediction, &r.error) {
                    (Some(p), _) => {
                        let ten = p.positive_10crop.map(|v| format!("  10-crop {v:.3}")).unwrap_or_default();
                        println!("{:<8}  P(positive) {:.3}{ten}  {}", p.label, p.positive, r.path);
                    }
                    (None, Some(e)) => println!("{:<8}  {e}", "error"),
                    (None, None) => {}
                }
            }
        }
    }
    Ok(())
}

/// Accuracy over the predicted images that `truth` lists, each line matched to
/// its image as `evaluate` matches them (data::label_match): by the tail of
/// its path, so `joy/1.jpg` and `fear/1.jpg` stay apart, and a bare `1.jpg`
/// naming both is an error that lists them.
fn print_accuracy(rows: &[Row], truth: &Path, oversample: bool) -> Result<()> {
    // The label file is read as the dataset reads its own (data::list_file):
    // every bad line is reported with its file and line.
    let (entries, mut problems) = deepsent::data::list_file::read(truth);
    let paths: Vec<PathBuf> = rows.iter().map(|r| PathBuf::from(&r.path)).collect();
    let (labels, mut unmatched) = deepsent::data::label_match::match_labels(truth, &entries, &paths, false);
    problems.append(&mut unmatched);
    if !problems.is_empty() {
        anyhow::bail!("{}", deepsent::data::Problems(problems));
    }
    let (mut seen, mut correct) = (0, 0);
    for (r, want) in rows.iter().zip(&labels) {
        if let (Some(p), Some(want)) = (&r.prediction, want) {
            seen += 1;
            correct += usize::from(p.label == want.name());
        }
    }
    let views = if oversample { "10-crop" } else { "centre crop" };
    eprintln!("accuracy ({views}) on the {seen} predicted images listed in {} ({} listed): {:.4}", truth.display(), entries.len(), correct as f64 / seen.max(1) as f64);
    Ok(())
}
