//! Reports: tables and plots of results.

pub mod paper;
pub mod confusion;
pub mod curves;
pub mod evaluation;
pub mod evaluation_plots;
pub mod maps;
pub mod overlay;
pub mod plot;
pub mod reproduction;
pub mod tables;

/// The current UTC time as an RFC 3339 string (for model cards and reports).
pub fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Writes a probe report's table and plot beside its JSON: `STEM.md`, `STEM.png`, `STEM.svg`.
pub fn write_probe(report: &crate::eval::probe::ProbeReport, stem: &std::path::Path, command: &str) -> anyhow::Result<()> {
    std::fs::write(stem.with_extension("md"), tables::probe_table(report, command))?;
    plot::probe_plot(report, stem)
}

/// Writes a crossval run's `results.md`.
pub fn write_crossval(results: &crate::eval::crossval::CrossvalResults, run: &std::path::Path, command: &str) -> anyhow::Result<()> {
    Ok(crate::atomic_write::write(&crate::eval::run_dir::RunDir::new(run).results_md(), tables::crossval_table(results, command))?)
}
