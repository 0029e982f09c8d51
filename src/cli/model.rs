use anyhow::Result;
use clap::Subcommand;
use deepsent::model::saved::SavedModel;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// What a saved model is: its card (training data, settings, accuracy), spec and size.
    Info {
        model: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::Info { model, json } => {
            let m = SavedModel::load(&model)?;
            let params = m.spec.parameter_count()?;
            if json {
                let v = serde_json::json!({ "file": model, "spec": m.spec.name, "layers": m.spec.layers.len(), "parameters": params, "card": m.card, "preprocess": m.preprocess });
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            let c = &m.card;
            let pct = |a: Option<f64>| a.map_or("unknown".to_string(), |a| format!("{:.1} %", 100.0 * a));
            println!("{}", model.display());
            println!("  network          {} ({} layers, {params} parameters)", m.spec.name, m.spec.layers.len());
            println!("  backbone         {} (from {})", c.backbone, c.pretrained_from);
            println!("  surgery          {}", c.surgery);
            println!("  trained on       {}", c.trained_on);
            println!("  settings         {}", c.settings);
            println!("  CV accuracy      {}", pct(c.cv_accuracy));
            println!("  test accuracy    {}", pct(c.test_accuracy));
            println!("  trained positive {}", pct(c.trained_positive_share));
            if let Some(cal) = &c.calibration {
                println!("  calibrated       log-odds ÷ {:.3} {:+.3}, positive above {:.3} ({})", cal.temperature, cal.shift, cal.threshold, cal.fitted);
            }
            println!("  created          {} by deepsent {}", c.created, c.deepsent_version);
        }
    }
    Ok(ExitCode::SUCCESS)
}
