//! The maps of one fold of a cross-validation run (`deepsent maps --eval`):
//! overlays of a dozen of its test images (the most confident positive and
//! negative, the worst mistakes) on one contact sheet, and the deletion
//! test over all of them, against deleting at random, into
//! `OUT/deletion.json` and `OUT/deletion.png`; the overlays, their maps and
//! their sheet in `OUT/overlays/`, and `OUT/maps-only.png`, the same maps
//! without the photos (what a repository may hold: the dataset's images
//! must not be copied into one).

use super::overlay::{caption, overlay, png_bytes};
use super::plot::{register_font, FONT};
use crate::data::Dataset;
use crate::eval::deletion::{cell_orders, deletion, CellOrders, Deletion};
use crate::eval::maps::{image_map, Grid, Mapper, Method};
use crate::eval::metrics::positive_probability;
use crate::eval::run_dir::RunDir;
use crate::eval::scoring::{probabilities, Views};
use crate::model::saved::SavedModel;
use crate::model::Net;
use crate::preprocess::decode::decode_file;
use crate::preprocess::DEFAULT_MAX_PIXELS;
use anyhow::{Context, Result};
use image::RgbImage;
use plotters::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `deletion.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct DeletionReport {
    pub model: String,
    pub fold: usize,
    pub method: Method,
    pub layer: String,
    /// Test images of the fold (all of them unless `--first`).
    pub images: usize,
    pub steps: usize,
    pub seed: u64,
    /// `deletion_auc_map / deletion_auc_random`: below 0.5 meets the goal of the maps issue.
    pub ratio: f64,
    /// The same ratio of the areas above the probability with the whole
    /// crop deleted (where both curves end): the fall each order causes,
    /// without that floor. None (null) where the random curve's area does
    /// not lie above the floor: the ratio has no meaning there.
    pub ratio_above_floor: Option<f64>,
    #[serde(flatten)]
    pub deletion: Deletion,
    /// The same test over cells, against the greedy order (`--cell-orders`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell_orders: Option<CellOrders>,
    pub seconds: f64,
    pub command: String,
}

pub struct FoldMaps<'a> {
    pub run: &'a Path,
    pub fold: usize,
    pub dataset: &'a Dataset,
    pub device: &'a burn::prelude::Device,
    pub method: Option<Method>,
    pub layer: Option<String>,
    /// Cells a side of an occlusion map or of RISE's masks (else the method's default).
    pub cells: Option<usize>,
    /// RISE's masks a view.
    pub masks: usize,
    /// Extremal perturbation's gradient steps or greedy deletion's rounds (else the method's default).
    pub iterations: Option<usize>,
    /// The fold's first this many test images only (else all).
    pub first: Option<usize>,
    pub steps: usize,
    pub seed: u64,
    pub batch: usize,
    /// Overlays drawn (a third each: most positive, most negative, worst mistakes).
    pub overlays: usize,
    /// Overlays from the 10 views instead of the centre crop.
    pub oversample: bool,
    /// The cell-level test with the greedy order on the first this many
    /// test images (0: none), over a grid of `order_cells` a side.
    pub cell_order_images: usize,
    pub order_cells: usize,
}

impl FoldMaps<'_> {
    pub fn run(&self, out: &Path, command: &str) -> Result<DeletionReport> {
        let t0 = std::time::Instant::now();
        let model_path = RunDir::new(self.run).fold(self.fold).model();
        let model = SavedModel::load(&model_path).with_context(|| format!("fold {}'s model", self.fold))?;
        let net = Net::new(model.spec.clone(), &model.weights, self.device)?;
        let mapper = Mapper::new(&net, self.method, self.layer.as_deref()).and_then(|m| m.with_grid(self.cells, self.masks, self.seed)).and_then(|m| m.with_iterations(self.iterations)).map_err(anyhow::Error::msg)?;
        let fold = self.dataset.fold(self.fold).with_context(|| format!("{} has no fold {}", self.dataset.name, self.fold))?;
        let items: Vec<&crate::data::Item> = fold.test.iter().take(self.first.unwrap_or(usize::MAX)).map(|&i| &self.dataset.items[i]).collect();
        let originals: Vec<RgbImage> = items.iter().map(|it| decode_file(&it.path, DEFAULT_MAX_PIXELS)).collect::<Result<_, _>>()?;
        let stored: Vec<RgbImage> = originals.iter().map(|img| model.preprocess.resize_image(img)).collect();
        let refs: Vec<&RgbImage> = stored.iter().collect();
        std::fs::create_dir_all(out.join("overlays"))?;

        let bar = crate::progress::bar_or_lines(refs.len() as u64, "deletion test");
        let deletion = deletion(&mapper, &model.preprocess, &refs, self.steps, self.seed, self.batch, || bar.inc(1));
        bar.finish_and_clear();
        let cell_orders = (self.cell_order_images > 0).then(|| {
            let some = &refs[..self.cell_order_images.min(refs.len())];
            let bar = crate::progress::bar_or_lines(some.len() as u64, "cell orders");
            let orders = cell_orders(&mapper, &model.preprocess, some, self.order_cells, self.seed, self.batch, || bar.inc(1));
            bar.finish_and_clear();
            orders
        });

        // The overlays: a dozen test images chosen by their answers, then their maps.
        let views = if self.oversample { Views::TenCrop } else { Views::Center };
        let p_positive: Vec<f32> = probabilities(&net, &model.preprocess, &refs, views, self.batch).iter().map(|p| positive_probability(p)).collect();
        let chosen = choose(&items.iter().map(|it| it.label.index()).collect::<Vec<_>>(), &p_positive, self.overlays);
        let (mut tiles, mut bare) = (Vec::new(), Vec::new());
        for (group, i) in &chosen {
            let m = &image_map(&mapper, &model.preprocess, refs[*i], views);
            let label = if m.p_positive > 0.5 { "positive" } else { "negative" };
            let truth = if items[*i].label.index() == 1 { "positive" } else { "negative" };
            let text = format!("{} (true {truth})", caption(m.p_positive, label, m.views));
            let picture = overlay(&originals[*i], &m.map, &text, 512)?;
            let stem = Path::new(&items[*i].name).file_stem().map_or("image".into(), |s| s.to_string_lossy().to_string());
            std::fs::write(out.join("overlays").join(format!("{group}-{stem}.png")), png_bytes(&picture)?)?;
            write_npy(&out.join("overlays").join(format!("{group}-{stem}.npy")), &m.map.resized(originals[*i].width() as usize, originals[*i].height() as usize))?;
            tiles.push(picture);
            // The same map on grey, without the photo: a picture that may be
            // committed (the dataset's images must not be copied into a repository).
            let grey = RgbImage::from_pixel(originals[*i].width(), originals[*i].height(), image::Rgb([160, 160, 160]));
            bare.push(overlay(&grey, &m.map, &format!("{} — {stem}", text), 512)?);
        }
        std::fs::write(out.join("overlays").join("sheet.png"), png_bytes(&contact_sheet(&tiles, 4, 300))?)?;
        std::fs::write(out.join("maps-only.png"), png_bytes(&contact_sheet(&bare, 4, 300))?)?;

        let report = DeletionReport {
            model: model_path.display().to_string(),
            fold: self.fold,
            method: mapper.method,
            layer: mapper.describe_layer(),
            images: refs.len(),
            steps: self.steps,
            seed: self.seed,
            ratio: deletion.deletion_auc_map / deletion.deletion_auc_random.max(f64::MIN_POSITIVE),
            ratio_above_floor: {
                let floor = deletion.curve_map.last().copied().unwrap_or(0.0);
                let random_above = deletion.deletion_auc_random - floor;
                (random_above > 0.0).then(|| (deletion.deletion_auc_map - floor) / random_above)
            },
            deletion,
            cell_orders,
            seconds: t0.elapsed().as_secs_f64(),
            command: command.to_string(),
        };
        crate::atomic_write::write(&out.join("deletion.json"), serde_json::to_string_pretty(&report)?)?;
        deletion_plot(&report, &out.join("deletion.png"))?;
        Ok(report)
    }
}

/// `n` images: a third the most confident positive answers, a third the
/// most confident negative, a third the worst mistakes (each group's name,
/// index; ties go to the lower index). The report's sample predictions are
/// chosen the same way.
pub(crate) fn choose(labels: &[usize], p_positive: &[f32], n: usize) -> Vec<(&'static str, usize)> {
    let per = n.div_ceil(3);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| p_positive[b].total_cmp(&p_positive[a]).then(a.cmp(&b)));
    let mut out: Vec<(&'static str, usize)> = Vec::new();
    out.extend(order.iter().filter(|&&i| p_positive[i] > 0.5).take(per).map(|&i| ("positive", i)));
    out.extend(order.iter().rev().filter(|&&i| p_positive[i] < 0.5).take(per).map(|&i| ("negative", i)));
    let error = |i: usize| (labels[i] as f32 - p_positive[i]).abs();
    let mut wrong: Vec<usize> = (0..labels.len()).filter(|&i| error(i) > 0.5).collect();
    wrong.sort_by(|&a, &b| error(b).total_cmp(&error(a)).then(a.cmp(&b)));
    out.extend(wrong.into_iter().take(per).map(|i| ("mistake", i)));
    out.truncate(n);
    out
}

/// Pictures in a grid `columns` wide, each scaled to `width`.
pub fn contact_sheet(tiles: &[RgbImage], columns: usize, width: u32) -> RgbImage {
    let scaled: Vec<RgbImage> = tiles.iter().map(|t| image::imageops::resize(t, width, ((t.height() as f32 * width as f32 / t.width().max(1) as f32).round() as u32).max(1), image::imageops::FilterType::Triangle)).collect();
    let columns = columns.max(1);
    let rows: Vec<&[RgbImage]> = scaled.chunks(columns).collect();
    let heights: Vec<u32> = rows.iter().map(|r| r.iter().map(|t| t.height()).max().unwrap_or(0)).collect();
    let gap = 6;
    let mut sheet = RgbImage::from_pixel(columns as u32 * (width + gap) + gap, heights.iter().map(|h| h + gap).sum::<u32>() + gap, image::Rgb([255, 255, 255]));
    let mut y = gap;
    for (row, h) in rows.iter().zip(&heights) {
        for (c, tile) in row.iter().enumerate() {
            image::imageops::overlay(&mut sheet, tile, (gap + c as u32 * (width + gap)) as i64, y as i64);
        }
        y += h + gap;
    }
    sheet
}

/// One image's files: `DIR/STEM.png`, the overlay (at most
/// [`super::overlay::MAX_SIDE`] a side), and `DIR/STEM.npy`, the map at the
/// image's own size (float32, height × width).
pub fn write_image_files(dir: &Path, stem: &str, original: &RgbImage, map: &Grid, caption: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let png = dir.join(format!("{stem}.png"));
    std::fs::write(&png, png_bytes(&overlay(original, map, caption, super::overlay::MAX_SIDE)?)?).with_context(|| format!("writing {}", png.display()))?;
    write_npy(&dir.join(format!("{stem}.npy")), &map.resized(original.width() as usize, original.height() as usize))
}

/// File stems for paths, unique within the list (`a`, `a-2`, … for two `a.jpg`).
pub fn unique_stems(paths: &[PathBuf]) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    paths
        .iter()
        .map(|p| {
            let stem = p.file_stem().map_or("image".into(), |s| s.to_string_lossy().to_string());
            let n = seen.entry(stem.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { stem } else { format!("{stem}-{n}") }
        })
        .collect()
}

/// A map as a float32 `.npy` (height × width).
pub fn write_npy(path: &Path, map: &Grid) -> Result<()> {
    let mut w = crate::eval::npy::Writer::<f32>::create(path, &[map.height, map.width]).with_context(|| format!("writing {}", path.display()))?;
    w.write(&map.values)?;
    w.finish().with_context(|| format!("writing {}", path.display()))
}

fn deletion_plot(r: &DeletionReport, png: &Path) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(png, (640, 420)).into_drawing_area();
    let draw = || -> Result<(), DrawingAreaErrorKind<<BitMapBackend as DrawingBackend>::ErrorType>> {
        root.fill(&WHITE)?;
        let title = format!("Deletion test, fold {} ({} images, {} at {})", r.fold, r.images, r.method, r.layer);
        let mut chart = ChartBuilder::on(&root).caption(title, (FONT, 16)).margin(12).x_label_area_size(36).y_label_area_size(50).build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart.configure_mesh().x_desc("fraction of the crop deleted").y_desc("P(predicted class)").label_style((FONT, 13)).axis_desc_style((FONT, 14)).draw()?;
        let d = &r.deletion;
        for (curve, auc, colour, name) in [(&d.curve_map, d.deletion_auc_map, RED, "by the map"), (&d.curve_random, d.deletion_auc_random, BLUE, "at random")] {
            chart
                .draw_series(LineSeries::new(d.fractions.iter().copied().zip(curve.iter().copied()), colour.stroke_width(2)))?
                .label(format!("{name}: AUC {auc:.3}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(BLACK).label_font((FONT, 13)).draw()?;
        root.present()
    };
    draw().map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dozen_split_into_confident_answers_and_mistakes() {
        let labels = [1, 1, 0, 0, 1, 0];
        let p = [0.9, 0.3, 0.1, 0.8, 0.6, 0.45];
        let c = choose(&labels, &p, 6);
        assert_eq!(c, [("positive", 0), ("positive", 3), ("negative", 2), ("negative", 1), ("mistake", 3), ("mistake", 1)]);
        let sheet = contact_sheet(&[RgbImage::new(100, 50), RgbImage::new(100, 80)], 4, 50);
        assert_eq!((sheet.width(), sheet.height()), (4 * 56 + 6, 40 + 12));
    }
}
