use super::data::DataArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use deepsent::eval::crossval::CrossvalConfig;
use deepsent::eval::maps::{image_map, Mapper, Method, EXTREMAL_AREAS, EXTREMAL_CELLS, EXTREMAL_STEPS, GREEDY_CELLS, GREEDY_ROUNDS, OCCLUSION_CELLS, RISE_CELLS, RISE_MASKS};
use deepsent::eval::run_dir::RunDir;
use deepsent::eval::scoring::Views;
use deepsent::model::saved::SavedModel;
use deepsent::model::Net;
use deepsent::preprocess::decode::decode_file;
use deepsent::preprocess::DEFAULT_MAX_PIXELS;
use deepsent::report::maps::{unique_stems, write_image_files, FoldMaps};
use deepsent::report::overlay::caption;
use std::path::PathBuf;
use std::process::ExitCode;

/// Sentiment maps: where in each image a model sees positive (red) or
/// negative (blue), as an overlay PNG and the map as .npy; with --eval, the
/// deletion test of a run's fold and a dozen of its overlays.
#[derive(Args)]
pub struct MapsArgs {
    #[command(flatten)]
    device: super::model_args::DeviceArg,
    /// A model saved by `finetune` or `crossval` (.safetensors).
    #[arg(long, required_unless_present = "eval", conflicts_with = "eval")]
    model: Option<PathBuf>,
    /// Image files to map.
    #[arg(required_unless_present = "eval", conflicts_with = "eval")]
    images: Vec<PathBuf>,
    /// Output directory: NAME.png and NAME.npy per image; with --eval,
    /// deletion.json, deletion.png, overlays.png and overlays/.
    #[arg(long)]
    out: PathBuf,
    /// Average the maps of the 10 oversampled views (each mapped back to where it was cut).
    #[arg(long)]
    oversample: bool,
    /// cam, grad-cam, occlusion, rise, extremal or greedy [default: CAM where the network ends in
    /// global average pooling and linear layers, else Grad-CAM].
    #[arg(long, value_parser = super::enum_value::<Method>)]
    method: Option<Method>,
    /// The blob Grad-CAM maps [default: the last with more than one position].
    #[arg(long)]
    layer: Option<String>,
    #[arg(long, help = format!("Cells a side of an occlusion map (one forward pass each) [default: {OCCLUSION_CELLS}], of RISE's random masks [default: {RISE_CELLS}], of extremal perturbation's masks [default: {EXTREMAL_CELLS}], or of greedy deletion's grid [default: {GREEDY_CELLS}]"))]
    cells: Option<usize>,
    /// RISE's random masks a view (one forward pass each).
    #[arg(long, default_value_t = RISE_MASKS)]
    masks: usize,
    #[arg(long, help = format!("Extremal perturbation's gradient steps (each a forward and backward pass of the view under each of its {} masks) [default: {EXTREMAL_STEPS}], or greedy deletion's rounds (each a forward pass per cell left) [default: {GREEDY_ROUNDS}]", EXTREMAL_AREAS.len()))]
    iterations: Option<usize>,
    /// The deletion test on the test images of fold --fold of the crossval
    /// run --run, with that fold's model, and a dozen overlays.
    #[arg(long, requires_all = ["run", "fold"])]
    eval: bool,
    #[arg(long)]
    run: Option<PathBuf>,
    #[arg(long)]
    fold: Option<usize>,
    /// With --eval, the deletion test on the fold's first this many test
    /// images only (a quick look at a slow method) [default: all].
    #[arg(long, requires = "eval")]
    first: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    /// Deletion steps (the crop deleted a 1/steps at a time).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Overlays drawn with --eval.
    #[arg(long, default_value_t = 12)]
    overlays: usize,
    /// Seed of the random deletion orders and of RISE's masks.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With --eval, also the deletion test over the cells of a grid on the
    /// first this many test images, the map's order against random and
    /// against the greedy order that reads the network's answers (how low
    /// any order of the cells gets; 2,080 passes an image at 8 cells).
    #[arg(long, default_value_t = 0, requires = "eval")]
    cell_orders: usize,
    /// Cells a side of --cell-orders' grid (1 to 32).
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=32))]
    order_cells: usize,
    /// Views per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
}

pub fn run(a: MapsArgs) -> Result<ExitCode> {
    let device = a.device.device()?;
    if a.eval {
        let run = a.run.clone().expect("clap requires --run");
        let config: CrossvalConfig = RunDir::new(&run).read_config()?.with_context(|| format!("{} has no config.json: is --run a crossval run directory?", run.display()))?;
        let request = a.data.request()?;
        let dataset = deepsent::data::load(&request).into_result()?;
        let described = deepsent::data::describe(&dataset, &request);
        if described != config.dataset {
            bail!("{} was run on {}, not {described}: pass the same data flags (--root, --subset, --folds)", run.display(), config.dataset);
        }
        let maps = FoldMaps { run: &run, fold: a.fold.expect("clap requires --fold"), dataset: &dataset, device: &device, method: a.method, layer: a.layer.clone(), cells: a.cells, masks: a.masks, iterations: a.iterations, first: a.first, steps: a.steps, seed: a.seed, batch: a.batch, overlays: a.overlays, oversample: a.oversample, cell_order_images: a.cell_orders, order_cells: a.order_cells };
        let r = maps.run(&a.out, &super::command_line())?;
        println!(
            "fold {} ({} test images, {} at {}): deletion AUC by the map {:.3}, at random {:.3} (ratio {:.2}; above the all-deleted floor {}); {}",
            r.fold,
            r.images,
            r.method,
            r.layer,
            r.deletion.deletion_auc_map,
            r.deletion.deletion_auc_random,
            r.ratio,
            r.ratio_above_floor.map_or("undefined: the random curve lies below it".to_string(), |r| format!("{r:.2}")),
            a.out.join("deletion.json").display()
        );
        if let Some(c) = &r.cell_orders {
            println!(
                "over {} × {} cells, first {} images: AUC by the map {:.3}, at random {:.3}, greedy {:.3} (ratios to random: map {:.2}, greedy {:.2})",
                c.cells, c.cells, c.images, c.auc_map, c.auc_random, c.auc_greedy, c.auc_map / c.auc_random, c.auc_greedy / c.auc_random
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let model_path = a.model.clone().expect("clap requires --model");
    let model = SavedModel::load(&model_path)?;
    let net = Net::new(model.spec.clone(), &model.weights, &device)?;
    let mapper = Mapper::new(&net, a.method, a.layer.as_deref()).and_then(|m| m.with_grid(a.cells, a.masks, a.seed)).and_then(|m| m.with_iterations(a.iterations)).map_err(anyhow::Error::msg)?;
    eprintln!("{} at {}", mapper.method, mapper.describe_layer());
    let views = if a.oversample { Views::TenCrop } else { Views::Center };
    let mut failed = 0;
    for (path, stem) in a.images.iter().zip(unique_stems(&a.images)) {
        match decode_file(path, DEFAULT_MAX_PIXELS) {
            Ok(original) => {
                let m = image_map(&mapper, &model.preprocess, &model.preprocess.resize_image(&original), views);
                let label = if m.p_positive > 0.5 { "positive" } else { "negative" };
                write_image_files(&a.out, &stem, &original, &m.map, &caption(m.p_positive, label, m.views))?;
                println!("{label:<8}  P(positive) {:.3}  {}  {}", m.p_positive, path.display(), a.out.join(format!("{stem}.png")).display());
            }
            Err(e) => {
                failed += 1;
                println!("{:<8}  {e}", "error");
            }
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
