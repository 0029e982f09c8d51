use anyhow::Result;
use clap::{Args, ValueEnum};
use deepsent::model::Arch;
use deepsent::model::surgery::{resolve, Patient};
use deepsent::train::bench;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BenchMode {
    /// Forward pass only.
    Infer,
    /// Forward, backward and a solver update.
    Train,
}

/// Images per second on random weights (compare with ../shared/bench/torch_caffenet_bench.py).
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    #[arg(long, default_value = "caffenet")]
    arch: Arch,
    #[arg(long, value_enum, default_value_t = BenchMode::Infer)]
    mode: BenchMode,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// The network measured: a surgery of the backbone (`none` for the
    /// ImageNet network). The default, the paper's `ft` (a new 2-output
    /// classifier, every layer trained), is what the PyTorch reference runs.
    #[arg(long, default_value = "ft")]
    surgery: String,
    /// Timed iterations (after 2 warm-up ones).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    #[arg(long)]
    json: bool,
    /// Time every layer alone (forward, and backward with its gradients) and
    /// print the table, with GFLOP/s of convolutions and inner products.
    #[arg(long)]
    profile: bool,
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    let name = a.arch.name();
    let mut spec = a.arch.spec()?;
    if a.surgery != "none" {
        spec = Patient::structure(spec)?.operate(&resolve(&name, &a.surgery)?, 0)?.spec;
    }
    if a.profile {
        let p = deepsent::train::profile::run(&name, spec, a.batch, a.iters.max(1), &a.device.device()?)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&p)?);
        } else {
            print!("{}", p.to_markdown());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let r = bench::run(&name, spec, matches!(a.mode, BenchMode::Train), a.batch, a.iters.max(1), &a.device.device()?)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{} {} batch {}: {:.2} img/s (median {:.3} s/iteration of {}, {} threads)", r.arch, r.mode, r.batch, r.images_per_second, r.median_seconds, r.iterations, r.threads);
    }
    Ok(ExitCode::SUCCESS)
}
