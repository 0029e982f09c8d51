use anyhow::Result;
use super::enum_value;
use clap::Args;
use deepsent::eval::recipe::HeadInit;
use deepsent::model::surgery::{self, Op};
use deepsent::model::Arch;
use deepsent::train::solver::{Augment, BatchNormMode, DecayTarget, Schedule};
use deepsent::train::SolverSettings;

/// Caffe solver settings; the defaults are the paper's.
#[derive(Args, Clone, Debug)]
pub struct SolverArgs {
    /// Learning rate at the start [default: 0.001, or the paper's rate for a
    /// surgery preset that had its own, e.g. 0.0001 for caffenet fc6-2].
    #[arg(long)]
    pub base_lr: Option<f64>,
    /// Multiply the learning rate by --gamma every this many epochs.
    #[arg(long, default_value_t = 6.0)]
    pub step_epochs: f64,
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f64,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// Training length in epochs (65 ≈ the authors' 180 iterations of 256 images).
    #[arg(long, default_value_t = 65.0)]
    pub epochs: f64,
    /// Images per solver iteration.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Images per forward/backward pass (gradients are accumulated to --batch).
    #[arg(long, default_value_t = 32)]
    pub micro_batch: usize,
    /// How the rate falls after the warm-up: step (the paper's) or cosine.
    #[arg(long, value_parser = enum_value::<Schedule>, default_value = "step")]
    pub schedule: Schedule,
    /// Epochs of linear warm-up from 0 to --base-lr.
    #[arg(long, default_value_t = 0.0)]
    pub warmup_epochs: f64,
    /// Each weight layer's rate is this to the power of its depth below the
    /// top weight layer (1: the same rate everywhere).
    #[arg(long, default_value_t = 1.0)]
    pub layer_decay: f64,
    /// Keep the weights of this many bottom weight layers (convolutions and
    /// inner products, from the input).
    #[arg(long, default_value_t = 0)]
    pub freeze_layers: usize,
    /// What weight decay pulls toward: zero (Caffe's) or pretrained (L2-SP).
    #[arg(long, value_parser = enum_value::<DecayTarget>, default_value = "zero")]
    pub decay_to: DecayTarget,
    /// Keep the average of the weights at the end of each of the last this
    /// many epochs (stochastic weight averaging); 0: the last weights.
    #[arg(long, default_value_t = 0.0)]
    pub swa_epochs: f64,
    /// Training views: paper (random crop + mirror) or strong (random-resized
    /// crop + mirror + colour jitter).
    #[arg(long, value_parser = enum_value::<Augment>, default_value = "paper")]
    pub augment: Augment,
    /// BatchNorm in training: frozen (its stored ImageNet statistics) or
    /// batch (each micro-batch's own, the stored ones updated for testing).
    #[arg(long, value_parser = enum_value::<BatchNormMode>, default_value = "frozen")]
    pub batchnorm: BatchNormMode,
}

impl SolverArgs {
    /// The settings; `preset_lr` is the surgery preset's own base rate, if any.
    pub fn settings(&self, preset_lr: Option<f64>) -> SolverSettings {
        SolverSettings {
            base_lr: self.base_lr.or(preset_lr).unwrap_or(SolverSettings::default().base_lr),
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            gamma: self.gamma,
            step_epochs: self.step_epochs,
            epochs: self.epochs,
            batch: self.batch,
            micro_batch: self.micro_batch,
            schedule: self.schedule,
            warmup_epochs: self.warmup_epochs,
            layer_decay: self.layer_decay,
            freeze_layers: self.freeze_layers,
            decay_to: self.decay_to,
            swa_epochs: self.swa_epochs,
            augment: self.augment,
            batchnorm: self.batchnorm,
        }
    }
}

/// How to fine-tune: surgery, the head's start, the solver, the seed.
#[derive(Args, Clone, Debug)]
pub struct RecipeArgs {
    /// A preset of the backbone (`deepsent surgery --list`; caffenet: ft,
    /// fc7-4096, fc6-4096, fc7-2, fc6-2, fc8-1000, fc9-2) or surgery ops, e.g.
    /// replace:fc8:2 or append:pool_final:fc9:2,freeze-to:fire4/conv3x3_2.
    #[arg(long, default_value = "ft")]
    pub surgery: String,
    #[command(flatten)]
    pub solver: SolverArgs,
    /// How new layers start: random (Gaussian, std 0.01, the paper's) or
    /// probe (the logistic regression on their input features, fitted on the
    /// training images only).
    #[arg(long, value_parser = enum_value::<HeadInit>, default_value = "random")]
    pub head_init: HeadInit,
    /// Learning-rate multiplier of new layers (the paper's 10).
    #[arg(long, default_value_t = 10.0)]
    pub new_lr_mult: f32,
    /// Seed of every random choice (shuffles, crops, dropout, new weights).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl RecipeArgs {
    pub fn ops(&self, arch: &Arch) -> Result<Vec<Op>> {
        Ok(surgery::resolve(&arch.name(), &self.surgery)?)
    }

    /// Solver settings, with the preset's own base rate unless --base-lr is given.
    pub fn solver_settings(&self, arch: &Arch) -> SolverSettings {
        self.solver.settings(surgery::find_preset(&arch.name(), &self.surgery).and_then(|p| p.base_lr))
    }
}
