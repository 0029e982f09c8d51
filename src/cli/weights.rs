use anyhow::{bail, Result};
use clap::Subcommand;
use deepsent::model::fetch;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum WeightsCommand {
    /// Download known pretrained weights into the cache ($DEEPSENT_HOME, else
    /// the user cache directory), checking their SHA-1.
    Fetch {
        /// Which weights: caffenet (the model zoo's BVLC reference CaffeNet).
        name: String,
        /// Download from this address instead (a mirror).
        #[arg(long)]
        url: Option<String>,
    },
    /// List the known weights and where they are cached.
    List,
}

pub fn run(cmd: WeightsCommand) -> Result<ExitCode> {
    match cmd {
        WeightsCommand::Fetch { name, url } => {
            let Some(w) = fetch::known(&name) else {
                bail!("unknown weights {name:?}; known: {}", fetch::KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", "));
            };
            let path = fetch::fetch(w, &fetch::cache_dir(), url.as_deref())?;
            println!("{}", path.display());
        }
        WeightsCommand::List => {
            for k in fetch::KNOWN {
                let p = fetch::cache_dir().join(k.file);
                println!("{:<10} {}  {}", k.name, if p.exists() { "cached " } else { "missing" }, p.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
