//! Command-line interface: one file per command group; each parses its flags
//! and calls the library.

mod bench;
mod classify;
mod crossval;
mod data;
mod evaluate;
mod finetune;
mod maps;
mod model;
mod model_args;
mod predict;
mod probe;
mod recipe_args;
mod report;
mod reproduce;
mod serve;
mod surgery;
mod weights;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Visual sentiment prediction with fine-tuned CNNs.
///
/// deepsent reproduces Campos et al., "Diving Deep into Sentiment:
/// Understanding Fine-tuned CNNs for Visual Sentiment Prediction" (2015):
/// fine-tune an ImageNet CNN to tell positive from negative images, evaluate
/// it by 5-fold cross-validation on the Twitter dataset, probe every layer and
/// operate on the network.
///
/// Data is found with --root, else $DEEPSENT_DATA, else ../shared/data/twitter;
/// models with --models, else $DEEPSENT_MODELS, else ../shared/models.
#[derive(Parser)]
#[command(name = "deepsent", version, after_help = "Start with:\n  deepsent data check          counts and checks the default dataset")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check datasets and make fold splits.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Top-5 ImageNet classes of images: checks that a model was imported right.
    Classify(classify::ClassifyArgs),
    /// Fine-tune and evaluate by k-fold cross-validation (the paper's Table 1).
    #[command(after_help = recipe_args::defaults_help())]
    Crossval(crossval::CrossvalArgs),
    /// Fine-tune one model on a whole dataset, for predict and serve.
    #[command(after_help = recipe_args::defaults_help())]
    Finetune(finetune::FinetuneArgs),
    /// Sentiment of images with a fine-tuned model.
    Predict(predict::PredictArgs),
    /// Metrics of a trained model on a labelled image set (any layout deepsent reads).
    Evaluate(evaluate::EvaluateArgs),
    /// Run an experiment file into a report with every table and plot (start here).
    Reproduce(reproduce::ReproduceArgs),
    /// Tables from finished runs.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Serve a fine-tuned model over HTTP.
    Serve(serve::ServeArgs),
    /// Inspect saved models.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Linear probes on every layer of a run's models (the paper's Table 2).
    Probe(probe::ProbeArgs),
    /// Sentiment maps (CAM / Grad-CAM) over images, or their deletion test on a run's fold.
    Maps(maps::MapsArgs),
    /// Print the network a surgery makes and its parameter count.
    Surgery(surgery::SurgeryArgs),
    /// Training and inference speed on random weights.
    Bench(bench::BenchArgs),
    /// Download known pretrained weights (caffenet, efficientnet-lite0) with their checksum checked, or write random ones.
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
}

/// The command line as typed, for the "made with" line of tables; the
/// program is named `deepsent` whatever path or copy ran it, so the line can
/// be run again elsewhere.
fn command_line() -> String {
    let args: Vec<String> = std::iter::once("deepsent".to_string()).chain(std::env::args().skip(1)).collect();
    // shlex quotes what a shell would split or expand; an argument it cannot
    // quote (a NUL byte) cannot have come from a shell either.
    shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(cmd) => data::run(cmd),
        Command::Classify(args) => classify::run(args),
        Command::Crossval(args) => crossval::run(args),
        Command::Finetune(args) => finetune::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Maps(args) => maps::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Report(cmd) => report::run(cmd),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Model(cmd) => model::run(cmd),
        Command::Surgery(args) => surgery::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Weights(cmd) => weights::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A library setting given on the command line by its serde name (the name
/// config and experiment files use), so the library needs no clap.
pub fn enum_value<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|e| e.to_string())
}
