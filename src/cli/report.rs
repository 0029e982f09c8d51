use anyhow::{Context, Result};
use clap::Subcommand;
use deepsent::eval::crossval::CrossvalResults;
use deepsent::report::tables::{surgery_table, VariantRow};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// One table of surgery variants (the paper's Tables 3 and 4) from crossval runs.
    Surgery {
        /// crossval run directories (each with results.json), in the table's order.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Write the Markdown here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(cmd: ReportCommand) -> Result<ExitCode> {
    match cmd {
        ReportCommand::Surgery { runs, out } => {
            let mut loaded = Vec::new();
            for run in &runs {
                let path = run.join("results.json");
                let r: CrossvalResults = serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| format!("reading {} (is the run finished?)", path.display()))?)
                    .with_context(|| format!("parsing {}", path.display()))?;
                loaded.push((run, r));
            }
            let backbone = loaded[0].1.config.backbone.clone();
            let rows = loaded
                .iter()
                .map(|(run, r)| VariantRow::of_run(&run.file_name().map_or("run".into(), |n| n.to_string_lossy().to_string()), r))
                .collect::<Result<Vec<_>>>()?;
            let command = super::command_line();
            let table = surgery_table(&backbone, &rows, &command);
            match out {
                Some(path) => {
                    std::fs::write(&path, &table)?;
                    println!("{}", path.display());
                }
                None => print!("{table}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
