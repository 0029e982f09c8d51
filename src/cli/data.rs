use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use deepsent::preprocess::decode::check_file;
use deepsent::preprocess::DEFAULT_MAX_PIXELS;
use deepsent::data::{check, split, DataRequest, FoldSource, Layout, Subset, DEFAULT_K, DEFAULT_SPLIT_SEED};
use deepsent::locate;
use std::path::PathBuf;
use std::process::ExitCode;

/// Which dataset, subset and folds: shared by every command that reads data.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Dataset root: the Twitter layout, a folder of positive/ and negative/,
    /// or a CSV of path,label [default: $DEEPSENT_DATA, else ../shared/data/twitter]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Twitter agreement subset (images on which at least 5, 4 or 3 of the 5
    /// annotators agree) [default: five]. The Twitter layout only.
    #[arg(long, value_parser = super::enum_value::<Subset>)]
    pub subset: Option<Subset>,
    /// Fold files DIR/fold<K>/{train,test}.txt for a dataset without published
    /// folds (default: a stratified split drawn with --split-seed).
    #[arg(long)]
    pub folds: Option<PathBuf>,
    /// Number of folds of a drawn split [default: 5].
    #[arg(long)]
    pub k: Option<usize>,
    /// Seed of a drawn split [default: 0].
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// Also train every fold on the images of this larger Twitter subset that
    /// are not in --subset (e.g. three: the 387 images on which only 3 or 4 of
    /// the 5 annotators agree, with their majority label). The test parts stay
    /// the published ones, and these images are never tested on.
    #[arg(long, value_parser = super::enum_value::<Subset>)]
    pub extra_train: Option<Subset>,
}

impl DataArgs {
    /// The request, after refusing options that do not apply to the
    /// dataset's layout (an ignored option would silently change nothing).
    pub fn request(&self) -> Result<DataRequest> {
        let root = locate::data_root(self.root.as_deref())?;
        let layout = Layout::detect(&root);
        if layout == Some(Layout::Twitter) {
            let given: Vec<&str> = [(self.folds.is_some(), "--folds"), (self.k.is_some(), "--k"), (self.split_seed.is_some(), "--split-seed")]
                .into_iter()
                .filter_map(|(given, flag)| given.then_some(flag))
                .collect();
            if !given.is_empty() {
                bail!("{} is the Twitter dataset, which has its published folds: {} applies only to a folder or CSV dataset", root.display(), given.join(", "));
            }
        } else if layout.is_some() && (self.subset.is_some() || self.extra_train.is_some()) {
            let flag = if self.subset.is_some() { "--subset" } else { "--extra-train" };
            bail!("{flag} applies only to the Twitter dataset; {} is a {} dataset", root.display(), if layout == Some(Layout::Csv) { "CSV" } else { "folder" });
        }
        let folds = match &self.folds {
            Some(_) if self.k.is_some() || self.split_seed.is_some() => bail!("--folds reads fold files; --k and --split-seed draw a split instead: give one or the other"),
            Some(dir) => FoldSource::Dir(dir.clone()),
            None => FoldSource::Drawn { k: self.k.unwrap_or(DEFAULT_K), seed: self.split_seed.unwrap_or(DEFAULT_SPLIT_SEED) },
        };
        Ok(DataRequest { root, subset: self.subset.unwrap_or_default(), folds, extra_train: self.extra_train })
    }
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Count images per subset and fold and report every problem (file:line).
    ///
    /// Exits non-zero if anything is wrong: a missing image, a duplicate
    /// entry, a label other than 0/1, a garbled line, an image in both train
    /// and test of a fold, folds that do not cover the same images.
    Check {
        #[command(flatten)]
        data: DataArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also count images that no fold uses as problems.
        #[arg(long)]
        strict: bool,
    },
    /// Draw a seeded stratified k-fold split and write it as fold files.
    /// Download a public dataset, pinned by commit and checksum, into the
    /// deepsent home ($DEEPSENT_HOME, else the user data directory), where
    /// every command then finds it. Resumable: files already there are kept.
    /// $DEEPSENT_MIRROR replaces https://raw.githubusercontent.com.
    Fetch {
        /// Which dataset: twitter (You et al. 2015: 1,269 images, 60 MB, with the authors' folds).
        dataset: String,
        /// Put it here instead.
        #[arg(long)]
        into: Option<PathBuf>,
    },
    Split {
        #[command(flatten)]
        data: DataArgs,
        /// Directory to write fold<K>/{train,test}.txt into.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: DataCommand) -> Result<ExitCode> {
    match cmd {
        DataCommand::Check { data, json, strict } => {
            // Each image's header: readable, JPEG/PNG/BMP, within the pixel limit (no pixel decoded).
            let image_check = |path: &std::path::Path| {
                let shown = format!("{}: ", path.display());
                check_file(path, DEFAULT_MAX_PIXELS).map(|_| ()).map_err(|e| e.to_string().trim_start_matches(&shown).to_string())
            };
            let report = check::check(&data.request()?, strict, &image_check);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        DataCommand::Fetch { dataset, into } => {
            if dataset != "twitter" {
                bail!("unknown dataset {dataset:?}: deepsent can fetch twitter");
            }
            let into = into.unwrap_or_else(|| deepsent::download::home().join(locate::TWITTER_IN_HOME));
            let done = deepsent::data::fetch::fetch_twitter(&into)?;
            println!("{}: {} files downloaded ({:.1} MB), {} already there", into.display(), done.downloaded, done.bytes_downloaded as f64 / 1e6, done.already_there);
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Split { data, out } => {
            let req = data.request()?;
            let dataset = deepsent::data::load(&req).into_result()?;
            split::write_folds(&out, &dataset.items, &dataset.folds)
                .with_context(|| format!("writing folds to {}", out.display()))?;
            println!("wrote {} folds of {} images to {}", dataset.folds.len(), dataset.items.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
