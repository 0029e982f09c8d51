use super::model_args::ModelArgs;
use anyhow::{bail, Result};
use clap::Args;
use deepsent::model::caffe::write::to_prototxt;
use deepsent::model::surgery::{presets, resolve, Patient};
use std::process::ExitCode;

/// Print the network a surgery makes (prototxt) and its parameter count, without training.
#[derive(Args)]
pub struct SurgeryArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A preset or ops (see `deepsent crossval --help`); empty prints the backbone.
    #[arg(long, default_value = "")]
    surgery: String,
    /// List the presets of the architecture.
    #[arg(long)]
    list: bool,
}

pub fn run(a: SurgeryArgs) -> Result<ExitCode> {
    if let Some(w) = &a.model.weights {
        bail!("surgery prints the network's structure and reads no weights: --weights {} does not apply", w.display());
    }
    let name = a.model.arch.name();
    if a.list {
        for p in presets(&name) {
            let lr = p.base_lr.map(|lr| format!(" [base lr {lr}]")).unwrap_or_default();
            let paper = p.paper.filter(|v| *v != p.name).map(|v| format!(" [the paper's {v}]")).unwrap_or_default();
            println!("{:<12} {}\n             {}{lr}{paper}", p.name, p.ops, p.about);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let spec = a.model.arch.spec()?;
    let before = spec.parameter_count()?;
    let ops = resolve(&name, &a.surgery)?;
    let p = Patient::structure(spec)?.operate(&ops, 0)?;
    print!("{}", to_prototxt(&p.spec));
    let after = p.spec.parameter_count()?;
    println!("# {name} with surgery `{}`: {after} learnable parameters ({:+} from {before}); new layers: {}", deepsent::model::surgery::ops_text(&ops), after as i64 - before as i64, if p.new_layers.is_empty() { "none".to_string() } else { p.new_layers.join(", ") });
    Ok(ExitCode::SUCCESS)
}
