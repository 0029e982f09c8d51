use anyhow::{Context, Result};
use clap::Subcommand;
use deepsent::eval::crossval::CrossvalResults;
use deepsent::eval::run_dir::RunDir;
use deepsent::model::surgery::{parse_ops, NetworkSize};
use deepsent::model::Arch;
use deepsent::report::tables::{surgery_table, VariantRow};
use std::path::{Path, PathBuf};
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
    /// Rewrite a finished crossval run's results.json and results.md with this
    /// version's verdicts (degenerate folds, folds where the network did not
    /// move), keeping the command recorded in its results.md.
    Crossval {
        /// crossval run directory (with results.json and results.md).
        run: PathBuf,
    },
}


pub fn run(cmd: ReportCommand) -> Result<ExitCode> {
    match cmd {
        ReportCommand::Surgery { runs, out } => {
            let mut loaded = Vec::new();
            for run in &runs {
                loaded.push((run, read_results(run)?));
            }
            let backbone = loaded[0].1.config.backbone.clone();
            let rows = loaded
                .iter()
                .map(|(run, r)| VariantRow::of_run(&run.file_name().map_or("run".into(), |n| n.to_string_lossy().to_string()), r))
                .collect::<Vec<_>>();
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
        ReportCommand::Crossval { run } => {
            let dir = RunDir::new(&run);
            let mut r = read_results(&run)?;
            r.derive_flags();
            let md_path = dir.results_md();
            let old = std::fs::read_to_string(&md_path).with_context(|| format!("reading {}", md_path.display()))?;
            let command = recorded_command(&old).with_context(|| format!("{} records no command (a ```sh block)", md_path.display()))?;
            dir.write_results(&r)?;
            deepsent::atomic_write::write(&md_path, deepsent::report::tables::crossval_table(&r, &command))?;
            // The probes of this run's trained models carry its verdict too.
            let probe_stem = dir.probe_stem(false);
            if let Ok(text) = std::fs::read_to_string(probe_stem.with_extension("json")) {
                let mut probe: deepsent::eval::probe::ProbeReport = serde_json::from_str(&text).with_context(|| format!("reading {}.json", probe_stem.display()))?;
                probe.unmoved_folds = r.unmoved_folds.clone();
                let probe_md = std::fs::read_to_string(probe_stem.with_extension("md")).unwrap_or_default();
                let probe_command = recorded_command(&probe_md).unwrap_or_else(|| command.clone());
                deepsent::atomic_write::write(&probe_stem.with_extension("json"), serde_json::to_string_pretty(&probe)?)?;
                deepsent::report::write_probe(&probe, &probe_stem, &probe_command)?;
            }
            if r.did_not_move() {
                println!("{}: the network did not move on any fold: a linear probe", run.display());
            } else {
                println!("{}: folds where the network did not move: {:?}", run.display(), r.unmoved_folds);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A finished run's results in today's form: where the run was made before
/// deepsent recorded them, the size of its network, and its weights by name
/// and SHA-256 instead of a path.
fn read_results(run: &Path) -> Result<CrossvalResults> {
    let mut r = RunDir::new(run).read_results()?;
    r.config.weights = deepsent::model::weights_id::upgraded(&r.config.weights);
    if r.network.is_none() {
        let arch: Arch = r.config.backbone.parse().map_err(anyhow::Error::msg)?;
        r.network = Some(NetworkSize::after(&arch.spec()?, &parse_ops(&r.config.recipe.surgery)?)?);
    }
    Ok(r)
}

/// The command a results Markdown file records (its ```sh block).
fn recorded_command(markdown: &str) -> Option<String> {
    markdown.split_once("```sh\n").and_then(|(_, rest)| rest.split_once("\n```")).map(|(c, _)| c.to_string())
}
