use anyhow::{Context, Result};
use clap::Args;
use deepsent::experiment::{jobs, runner, Experiment};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run an experiment file: every table of the paper into one report.
#[derive(Args)]
pub struct ReproduceArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    /// The experiment (TOML), e.g. experiments/squeezenet.toml.
    experiment: PathBuf,
    /// Report directory [default: reports/<experiment name>, with -quick for --quick].
    /// Run the same command again to resume.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The small version (a few folds, one epoch, one surgery variant, a few
    /// layers): minutes instead of hours, to see the whole pipeline work.
    #[arg(long)]
    quick: bool,
    /// Models directory [default: $DEEPSENT_MODELS, else ../shared/models].
    #[arg(long)]
    models: Option<PathBuf>,
    /// Images per test-time forward pass.
    #[arg(long, default_value_t = 16)]
    eval_batch: usize,
    /// Memory for probe features held at once, in GiB.
    #[arg(long, default_value_t = 4.0)]
    memory_gib: f64,
    /// Print the study's independent jobs as JSON lines (id, index, what
    /// each needs, done, held by) and exit.
    #[arg(long, conflicts_with_all = ["job", "worker"])]
    plan: bool,
    /// Run one job (its id or index from --plan) and whatever it needs that
    /// no other worker runs, then exit without writing the report.
    #[arg(long, conflicts_with = "worker")]
    job: Option<String>,
    /// Take jobs no other worker holds until every job is done, then exit
    /// without writing the report (a cluster's workers; the plain command
    /// assembles the report once they are done).
    #[arg(long)]
    worker: bool,
    /// A job's lease expires this long after its worker's last heartbeat;
    /// then another worker takes the job over.
    #[arg(long, default_value_t = deepsent::experiment::jobs::DEFAULT_LEASE.as_secs_f64())]
    lease_seconds: f64,
}

pub fn run(a: ReproduceArgs) -> Result<ExitCode> {
    let exp = Experiment::load(&a.experiment)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = a.experiment.file_stem().map_or("report".into(), |s| s.to_string_lossy().to_string());
        PathBuf::from("reports").join(if a.quick { format!("{stem}-quick") } else { stem })
    });
    let command = super::command_line();
    let options = runner::Options {
        quick: a.quick,
        models: a.models.clone(),
        eval_batch: a.eval_batch,
        probe_memory: (a.memory_gib * (1u64 << 30) as f64) as usize,
        command: command.clone(),
        device: a.device.choice()?,
        lease: std::time::Duration::try_from_secs_f64(a.lease_seconds).ok().filter(|d| !d.is_zero()).context("--lease-seconds must be a positive number of seconds")?,
    };
    if a.plan || a.job.is_some() || a.worker {
        let study = runner::Study::open(&exp, &out, &options)?;
        if a.plan {
            for line in jobs::plan_lines(&study)? {
                println!("{line}");
            }
        } else {
            let target = a.job.map_or(jobs::Target::All, jobs::Target::One);
            jobs::work(&study, &target)?;
            eprintln!("done: the same command without --job/--worker writes the report once every job of the study is done");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = runner::run(&exp, &out, &options)?;
    deepsent::report::reproduction::write(&outcome, &out, a.eval_batch, &command)?;
    let (_, ft) = &outcome.finetune;
    println!("Table 1: centre {:.3} ± {:.3}, 10-crop {:.3} ± {:.3} (paper: 0.817 ± 0.038, 0.830 ± 0.034)", ft.mean_center, ft.std_center, ft.mean_oversample, ft.std_oversample);
    println!("report: {0}/index.html (open it in a browser), {0}/index.md, {0}/results.json", out.display());
    Ok(ExitCode::SUCCESS)
}
