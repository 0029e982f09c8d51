use super::enum_value;
use clap::Args;
use deepsent::train::solver::{Augment, BatchNormMode, DecayTarget, Schedule};
use deepsent::train::{HeadInit, Recipe, RecipeOverrides};
use serde::Serialize;

/// How to fine-tune: each flag changes one setting of the paper's recipe
/// (`deepsent::train::Recipe`), the same keys as an experiment file's
/// `[finetune]`. Their defaults are listed below the options.
#[derive(Args, Clone, Debug, Default, Serialize)]
pub struct RecipeArgs {
    /// A preset of the backbone (`deepsent surgery --list`; caffenet: ft,
    /// fc7-4096, fc6-4096, fc7-2, fc6-2, fc8-1000, fc9-2) or surgery ops, e.g.
    /// replace:fc8:2 or append:pool_final:fc9:2,freeze-to:fire4/conv3x3_2.
    #[arg(long)]
    pub surgery: Option<String>,
    /// Learning rate at the start (a surgery preset may have its own, e.g.
    /// 0.0001 for caffenet fc6-2).
    #[arg(long)]
    pub base_lr: Option<f64>,
    /// Multiply the learning rate by --gamma every this many epochs.
    #[arg(long)]
    pub step_epochs: Option<f64>,
    #[arg(long)]
    pub gamma: Option<f64>,
    #[arg(long)]
    pub momentum: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Training length in epochs (65 ≈ the authors' 180 iterations of 256 images).
    #[arg(long)]
    pub epochs: Option<f64>,
    /// Images per solver iteration.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Images per forward/backward pass (gradients are accumulated to --batch).
    #[arg(long)]
    pub micro_batch: Option<usize>,
    /// How new layers start: random (Gaussian, std 0.01, the paper's) or
    /// probe (the logistic regression on their input features, fitted on the
    /// training images only).
    #[arg(long, value_parser = enum_value::<HeadInit>)]
    pub head_init: Option<HeadInit>,
    /// Learning-rate multiplier of new layers.
    #[arg(long)]
    pub new_lr_mult: Option<f32>,
    /// Seed of every random choice (shuffles, crops, dropout, new weights).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How the rate falls after the warm-up: step (the paper's) or cosine.
    #[arg(long, value_parser = enum_value::<Schedule>)]
    pub schedule: Option<Schedule>,
    /// Epochs of linear warm-up from 0 to --base-lr.
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
    /// Each weight layer's rate is this to the power of its depth below the
    /// top weight layer (1: the same rate everywhere).
    #[arg(long)]
    pub layer_decay: Option<f64>,
    /// Keep the weights of this many bottom weight layers (convolutions and
    /// inner products, from the input).
    #[arg(long)]
    pub freeze_layers: Option<usize>,
    /// What weight decay pulls toward: zero (Caffe's) or pretrained (L2-SP).
    #[arg(long, value_parser = enum_value::<DecayTarget>)]
    pub decay_to: Option<DecayTarget>,
    /// Keep the average of the weights at the end of each of the last this
    /// many epochs (stochastic weight averaging); 0: the last weights.
    #[arg(long)]
    pub swa_epochs: Option<f64>,
    /// Training views: paper (random crop + mirror) or strong (random-resized
    /// crop + mirror + colour jitter).
    #[arg(long, value_parser = enum_value::<Augment>)]
    pub augment: Option<Augment>,
    /// BatchNorm in training: frozen (its stored ImageNet statistics) or
    /// batch (each micro-batch's own, the stored ones updated for testing).
    #[arg(long, value_parser = enum_value::<BatchNormMode>)]
    pub batchnorm: Option<BatchNormMode>,
    /// Share of each training target spread over both classes (label
    /// smoothing, e.g. 0.1); 0: one-hot targets.
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// End this share of the way from the start to the trained weights
    /// (WiSE-FT's weight-space ensemble with the probe-initialised start;
    /// 1: the trained weights). Search it (`--search wise_alpha=0.5,1`) and
    /// the points share one training.
    #[arg(long)]
    pub wise_alpha: Option<f64>,
}

impl RecipeArgs {
    /// The flags given, as overrides of the paper's recipe. The flags are
    /// the recipe's own keys, so they are carried over by name.
    pub fn overrides(&self) -> RecipeOverrides {
        serde_json::to_value(self).and_then(serde_json::from_value).expect("every recipe flag is a RecipeOverrides field")
    }
}

/// The recipe's defaults (the paper's), for the help text.
pub fn defaults_help() -> String {
    let recipe = serde_json::to_value(Recipe::default()).unwrap_or_default();
    let solver = recipe["solver"].as_object().cloned().unwrap_or_default();
    let own = recipe.as_object().cloned().unwrap_or_default().into_iter().filter(|(k, _)| k != "solver");
    let lines: Vec<String> = own.chain(solver).map(|(k, v)| format!("  --{:<16} {}", k.replace('_', "-"), deepsent::eval::search::value_text(&v))).collect();
    format!("Recipe defaults (the paper's):\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        recipe: RecipeArgs,
    }

    #[test]
    fn every_flag_reaches_the_recipe_and_unset_flags_keep_the_papers() {
        let none = Cli::parse_from(["x"]).recipe.overrides();
        assert_eq!(none, RecipeOverrides::default());
        let args = ["x", "--surgery", "fc7-2", "--base-lr", "0.01", "--step-epochs", "3", "--gamma", "0.5", "--momentum", "0.8", "--weight-decay", "0.001",
            "--epochs", "9", "--batch", "64", "--micro-batch", "16", "--head-init", "probe", "--new-lr-mult", "2", "--seed", "4", "--schedule", "cosine",
            "--warmup-epochs", "1", "--layer-decay", "0.9", "--freeze-layers", "2", "--decay-to", "pretrained", "--swa-epochs", "2", "--augment", "strong",
            "--batchnorm", "batch", "--label-smoothing", "0.1", "--wise-alpha", "0.5"];
        let r = Cli::parse_from(args).recipe.overrides().recipe("caffenet").unwrap();
        let s = &r.solver;
        assert_eq!((r.surgery.as_str(), r.head_init, r.new_lr_mult, r.seed), ("fc7-2", HeadInit::Probe, 2.0, 4));
        assert_eq!((s.base_lr, s.step_epochs, s.gamma, s.momentum, s.weight_decay, s.epochs, s.batch, s.micro_batch), (0.01, 3.0, 0.5, 0.8, 0.001, 9.0, 64, 16));
        assert_eq!((s.schedule, s.warmup_epochs, s.layer_decay, s.freeze_layers), (Schedule::Cosine, 1.0, 0.9, 2));
        assert_eq!((s.decay_to, s.swa_epochs, s.augment, s.batchnorm), (DecayTarget::Pretrained, 2.0, Augment::Strong, BatchNormMode::Batch));
        assert_eq!((s.label_smoothing, r.wise_alpha), (0.1, 0.5));
        // Every recipe key is a flag (the test above sets each one).
        assert_eq!(args.iter().filter(|a| a.starts_with("--")).count(), Recipe::keys().len());
        assert!(defaults_help().contains("--base-lr          0.001") && defaults_help().contains("--surgery          ft"), "{}", defaults_help());
    }
}
