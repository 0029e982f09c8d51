use super::model_args::ModelArgs;
use anyhow::Result;
use clap::{Args, ValueEnum};
use deepsent::locate;
use deepsent::model::Net;
use deepsent::preprocess::{Resize, DEFAULT_MAX_PIXELS};
use deepsent::serve::{classify, labels};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ResizeArg {
    /// Caffe's test transform: warp to 256×256, centre crop of the input size.
    Warp256,
    /// Resize straight to the input size.
    Direct,
}

/// Top-5 ImageNet classes of images (checks that a model was imported right).
#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    #[command(flatten)]
    model: ModelArgs,
    /// Class names, one a line (a leading "background" line is skipped)
    /// [default: imagenet_labels_1001.txt in the models directory, for 1,000 outputs]
    #[arg(long)]
    labels: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ResizeArg::Warp256)]
    resize: ResizeArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Number of classes to show.
    #[arg(long, default_value_t = 5)]
    top: usize,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(a: ClassifyArgs) -> Result<ExitCode> {
    let (mut model, _) = a.model.load()?;
    if let ResizeArg::Direct = a.resize {
        model.preprocess.resize = Resize::Direct;
    }
    let net = Net::new(model.spec, &model.weights, &a.device.device()?)?;
    let out_blob = net.spec.output_blob().to_string();
    let outputs = net.spec.infer_shapes()?.blobs[&out_blob][0];
    let names = match &a.labels {
        Some(p) => Some(labels::read(p, outputs)?),
        None => locate::models_dir(a.model.models.as_deref())
            .ok()
            .map(|m| m.join("imagenet_labels_1001.txt"))
            .filter(|p| p.exists() && outputs == 1000)
            .map(|p| labels::read(&p, outputs))
            .transpose()?,
    };
    let probs = classify::output_rows(&net, &model.preprocess, &a.images, 16, DEFAULT_MAX_PIXELS)?;
    let results: Vec<classify::Classified> = a
        .images
        .iter()
        .zip(probs)
        .map(|(p, row)| classify::Classified { image: p.display().to_string(), top: classify::top_k(&row, a.top, names.as_deref()) })
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            println!("{}", r.image);
            for c in &r.top {
                println!("  {:.3}  {:>4}  {}", c.prob, c.index, c.label.as_deref().unwrap_or(""));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
