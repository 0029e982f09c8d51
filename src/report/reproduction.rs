//! The report of `deepsent reproduce`: `index.md`, a self-contained
//! `index.html` (pictures embedded), `results.json` with every number, and
//! the plots under `plots/`. Tables put the paper's numbers beside ours.

use crate::eval::crossval::Standing;
use crate::eval::predictions::{self, Prediction};
use crate::experiment::runner::Outcome;
use crate::report::tables::{crossval_table, probe_table, surgery_table, VariantRow};
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// The version of burn deepsent is built with (Cargo.toml pins it exactly).
pub const BURN_VERSION: &str = "0.22.1";

/// Images per group on the sample-predictions page.
const SAMPLES: usize = 8;
/// Marker in the Markdown where the HTML puts the thumbnails.
const SAMPLES_MARK: &str = "<!-- sample thumbnails -->";

#[derive(Serialize)]
struct Versions {
    deepsent: &'static str,
    burn: &'static str,
    os: &'static str,
    arch: &'static str,
    threads: usize,
}

#[derive(Serialize)]
struct VariantJson<'a> {
    name: &'a str,
    paper: Option<&'static str>,
    confusion_oversample: [[usize; 2]; 2],
    results: &'a crate::eval::crossval::CrossvalResults,
}

/// Writes the report into `out`; `eval_batch` is used to compute predictions
/// missing from runs made before they were kept.
pub fn write(o: &Outcome, out: &Path, eval_batch: usize, command: &str) -> Result<()> {
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots)?;
    let predictions_of = |run: &Path, folds: &[usize]| -> Result<Vec<Prediction>> {
        // Predictions are in each fold's directory; only old runs lack them.
        predictions::of_run(run, folds, &o.dataset, &o.cache, eval_batch, &o.device)
    };
    let (ft_dir, ft) = &o.finetune;
    // Each run's own files, beside its results.json.
    super::write_crossval(ft, ft_dir, command)?;
    for (_, dir, results) in &o.surgery {
        super::write_crossval(results, dir, command)?;
    }
    for (stem, report) in &o.probes {
        super::write_probe(report, stem, command)?;
    }
    let ft_predictions = predictions_of(ft_dir, &ft.config.folds)?;
    let mut md = String::new();
    let exp = &o.experiment;
    let _ = writeln!(md, "# {}\n", exp.title);
    let _ = writeln!(
        md,
        "Campos et al., *Diving Deep into Sentiment* (2015), reproduced with **{}** on {} by `deepsent reproduce`. Made {}; {:.0} s of work in this invocation (runs already complete were read, not redone).\n",
        exp.backbone,
        ft.config.dataset,
        crate::report::timestamp(),
        o.seconds
    );
    if o.quick {
        let _ = writeln!(
            md,
            "> **Quick version** (`--quick`): folds {:?} only, {} epoch(s) of fine-tuning, surgery variants {:?}, probed layers {}. The numbers show that the pipeline works end to end; they are not the study's results.\n",
            exp.quick.folds,
            exp.quick.epochs,
            exp.surgery.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            if exp.probes.layers.is_empty() { "all".to_string() } else { exp.probes.layers.join(", ") }
        );
    }

    // Table 1.
    // The heading says what the run may be called (its verdict), not "fine-tuning" regardless.
    match ft.standing() {
        Standing::Moved => {
            let _ = writeln!(md, "## Table 1 — fine-tuning\n");
        }
        _ => {
            let _ = writeln!(md, "## Table 1 — {}\n", ft.verdict.split(':').next().unwrap_or_default());
        }
    }
    if ft.did_not_move() {
        let _ = writeln!(md, "> **The network did not move: this is a linear probe, not fine-tuning.** On every fold training changed the test accuracy by at most one image.\n");
    }
    let ((pc, pcs), (po, pos)) = super::paper::FINETUNED;
    let _ = writeln!(md, "| | centre crop | 10-crop |\n|---|---|---|");
    let _ = writeln!(md, "| ours ({}, `{}`) | {:.3} ± {:.3} | {:.3} ± {:.3} |", exp.backbone, exp.finetune.surgery(), ft.mean_center, ft.std_center, ft.mean_oversample, ft.std_oversample);
    let _ = writeln!(md, "| paper (CaffeNet) | {pc:.3} ± {pcs:.3} | {po:.3} ± {pos:.3} |");
    let _ = writeln!(md, "| difference | {:+.3} | {:+.3} |\n", ft.mean_center - pc, ft.mean_oversample - po);
    if let (Some(p), Some(start)) = (&ft.paired_center, ft.mean_center_before()) {
        let verdict = if p.improved >= p.folds.saturating_sub(1) && p.mean > 0.0 { "fine-tuning beat the network it started from" } else { "**fine-tuning did not beat the network it started from**" };
        let _ = writeln!(
            md,
            "Centre crop, before training (the probe-initialised start) {start:.3} → after {:.3}: paired gain {:+.3} (95 % interval [{:+.3}, {:+.3}]), improved on {} of {} folds: {verdict}.\n",
            ft.mean_center, p.mean, p.ci95.0, p.ci95.1, p.improved, p.folds
        );
    }
    let baseline = predictions::majority_baseline(&ft_predictions);
    let _ = writeln!(md, "Always answering the majority class scores {baseline:.3} on these test folds: a collapsed model's accuracy.\n");
    md.push_str(&demote(&crossval_table(ft, command), 2));
    let logs = super::curves::read_logs(ft_dir, ft)?;
    super::curves::training_curves(&logs, &format!("Table 1 run: {} ({})", exp.finetune.surgery(), ft.config.recipe.surgery), &plots.join("training-finetune.png"))?;
    super::confusion::confusion_plot(predictions::confusion(&ft_predictions, true), "Table 1 run, 10-crop, all test folds", &plots.join("confusion-finetune.png"))?;
    let _ = writeln!(md, "\n![training curves](plots/training-finetune.png)\n\n![confusion matrix](plots/confusion-finetune.png)\n");

    // Table 2.
    let _ = writeln!(md, "## Table 2 — layer probes\n");
    for (i, (stem, report)) in o.probes.iter().enumerate() {
        let name = stem.file_name().map_or("probe".into(), |n| n.to_string_lossy().to_string());
        std::fs::copy(stem.with_extension("png"), plots.join(format!("{name}.png"))).with_context(|| format!("copying {}.png", stem.display()))?;
        let table = probe_table(report, command);
        // The paper's column once, after the last of our tables.
        let table = match (i + 1 < o.probes.len(), table.find("\nThe paper (fine-tuned CaffeNet")) {
            (true, Some(start)) => {
                let end = table[start..].find("\nStandard deviation").map_or(table.len(), |e| start + e);
                format!("{}{}", &table[..start], &table[end..])
            }
            _ => table,
        };
        md.push_str(&demote(&table, 2));
        let _ = writeln!(md, "\n![{name}](plots/{name}.png)\n");
    }
    if o.probes.is_empty() {
        let _ = writeln!(md, "No probes in this experiment.\n");
    }

    // Tables 3–4.
    let _ = writeln!(md, "## Tables 3–4 — network surgery\n");
    let mut variants_json = Vec::new();
    if o.surgery.is_empty() {
        let _ = writeln!(md, "No surgery variants in this experiment.\n");
    } else {
        // Table 1's run is a variant too (the paper's ft, or fc9-2 for
        // SqueezeNet's lpft): listed first, so the table compares against it.
        let mut table1 = VariantRow::of_run(exp.finetune.surgery(), ft);
        table1.name = format!("{} (Table 1)", table1.name);
        let mut rows = vec![table1];
        for (name, _, r) in &o.surgery {
            rows.push(VariantRow::of_run(name, r));
        }
        md.push_str(&demote(&surgery_table(&exp.backbone, &rows, command), 2));
        // The paper's variants within a point of the floor, to read ours against.
        let at_floor: Vec<String> = super::paper::SURGERY.iter().filter(|(_, c, _)| (c - baseline).abs() < 0.01).map(|(n, c, _)| format!("{n} {c:.3}")).collect();
        let paper_too = if at_floor.is_empty() { String::new() } else { format!(" (so did the paper's {})", at_floor.join(", ")) };
        let _ = writeln!(md, "\nThe majority class alone scores {baseline:.3}; a variant near it has learnt little{paper_too}.\n");
        for ((name, dir, r), row) in o.surgery.iter().zip(&rows[1..]) {
            let preds = predictions_of(dir, &r.config.folds)?;
            let m = predictions::confusion(&preds, true);
            super::confusion::confusion_plot(m, &format!("{name}, 10-crop"), &plots.join(format!("confusion-{name}.png")))?;
            let logs = super::curves::read_logs(dir, r)?;
            super::curves::training_curves(&logs, &format!("surgery {name}"), &plots.join(format!("training-{name}.png")))?;
            let _ = writeln!(md, "### {name}\n\n![training curves of {name}](plots/training-{name}.png)\n\n![confusion matrix of {name}](plots/confusion-{name}.png)\n");
            variants_json.push(VariantJson { name, paper: row.paper, confusion_oversample: m, results: r });
        }
    }

    // Sample predictions.
    let _ = writeln!(md, "## Sample predictions\n");
    let _ = writeln!(md, "Test images of the Table 1 run, each scored by the model of the fold that held it out (10-crop probability of *positive*); in the HTML report, each beside its sentiment map from that model (10 views: red where it sees positive, blue negative; `deepsent maps`).\n");
    let groups = sample_groups(&ft_predictions);
    for (title, rows) in &groups {
        let _ = writeln!(md, "### {title}\n\n| image | true label | p(positive) |\n|---|---|---|");
        if rows.is_empty() {
            let _ = writeln!(md, "| none | | |");
        }
        for r in rows {
            // The path as the dataset gives it (e.g. under ../shared): a reader
            // can open the picture, and no dataset image enters the Markdown.
            let _ = writeln!(md, "| `{}` | {} | {:.3} |", r.path.display(), if r.label == 1 { "positive" } else { "negative" }, r.p_positive_oversample);
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "{SAMPLES_MARK}\n");

    // Settings.
    let versions = Versions { deepsent: env!("CARGO_PKG_VERSION"), burn: BURN_VERSION, os: std::env::consts::OS, arch: std::env::consts::ARCH, threads: rayon::current_num_threads() };
    let _ = writeln!(md, "## Settings\n");
    let _ = writeln!(md, "deepsent {}, burn {} (flex backend), {} {}, {} threads. ImageNet weights: `{}`.\n", versions.deepsent, versions.burn, versions.os, versions.arch, versions.threads, crate::model::weights_id::upgraded(&o.weights.display().to_string()));
    let wall: f64 = ft.folds.iter().map(|f| f.train_seconds).sum::<f64>() + o.surgery.iter().flat_map(|(_, _, r)| r.folds.iter().map(|f| f.train_seconds)).sum::<f64>();
    let probe_s: f64 = o.probes.iter().map(|(_, p)| p.seconds).sum();
    let _ = writeln!(md, "Wall time of the runs: training (all runs, all folds) {:.0} min, probe fitting {:.0} s.\n", wall / 60.0, probe_s);
    let _ = writeln!(md, "The experiment (every setting and seed; unset fields are the paper's):\n\n```toml\n{}```\n", toml::to_string(exp)?);
    let _ = writeln!(md, "Command:\n\n```sh\n{command}\n```");

    std::fs::write(out.join("index.md"), &md)?;
    let sample_maps = SampleMaps { run: ft_dir, dataset: &o.dataset, device: &o.device, nets: Default::default() };
    let thumbs = thumbnails_html(&groups, |r, decoded| sample_maps.thumbnail(r, decoded));
    std::fs::write(out.join("index.html"), html(&exp.title, &md, out, &thumbs)?)?;
    let json = serde_json::json!({
        "title": exp.title,
        "quick": o.quick,
        "experiment": exp,
        "versions": versions,
        "seconds": o.seconds,
        "table1": ft,
        "paper_table1": { "center": super::paper::FINETUNED.0, "oversample": super::paper::FINETUNED.1 },
        "probes": o.probes.iter().map(|(_, p)| p).collect::<Vec<_>>(),
        "surgery": variants_json,
        "confusion_oversample": predictions::confusion(&ft_predictions, true),
        "majority_baseline": baseline,
    });
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

/// A standalone table as a section of the report: every heading lowered by
/// `levels`, and its "Command:" block left out (the report ends with the one
/// command that made it all).
fn demote(md: &str, levels: usize) -> String {
    let md = match md.rfind("\nCommand:\n") {
        Some(i) => &md[..i + 1],
        None => md,
    };
    let prefix = "#".repeat(levels);
    let mut in_code = false;
    md.lines()
        .map(|l| {
            if l.starts_with("```") {
                in_code = !in_code;
            }
            if !in_code && l.starts_with('#') { format!("{prefix}{l}\n") } else { format!("{l}\n") }
        })
        .collect()
}

/// Most confidently positive, most confidently negative, worst mistakes
/// (by the 10-crop probability; ties by image name).
fn sample_groups(rows: &[Prediction]) -> Vec<(&'static str, Vec<Prediction>)> {
    let mut by_name: Vec<&Prediction> = rows.iter().collect();
    by_name.sort_by(|a, b| a.image.cmp(&b.image));
    let labels: Vec<usize> = by_name.iter().map(|r| r.label).collect();
    let p: Vec<f32> = by_name.iter().map(|r| r.p_positive_oversample).collect();
    let chosen = super::maps::choose(&labels, &p, 3 * SAMPLES);
    [("positive", "Most confidently positive"), ("negative", "Most confidently negative"), ("mistake", "Worst mistakes")]
        .into_iter()
        .map(|(group, title)| (title, chosen.iter().filter(|(g, _)| *g == group).map(|&(_, i)| by_name[i].clone()).collect()))
        .collect()
}

/// Small JPEG thumbnails of the sample images, embedded (for the HTML only:
/// the Markdown, which may be committed, names the files instead).
fn thumbnails_html(groups: &[(&str, Vec<Prediction>)], map_of: impl Fn(&Prediction, &image::RgbImage) -> Result<String>) -> String {
    let mut s = String::from("<div class=\"samples\">");
    for (title, rows) in groups {
        let _ = write!(s, "<h3>{}</h3><div class=\"row\">", escape(title));
        for r in rows {
            // Decoded once, for the thumbnail and for the map.
            let (img, map) = match crate::preprocess::decode::decode_file(&r.path, crate::preprocess::DEFAULT_MAX_PIXELS) {
                Ok(decoded) => {
                    let img = match jpeg_base64(&decoded) {
                        Ok(data) => format!("<img alt=\"{0}\" src=\"data:image/jpeg;base64,{data}\">", escape(&r.image)),
                        Err(e) => format!("<span class=\"missing\">{}: {}</span>", escape(&r.image), escape(&e.to_string())),
                    };
                    let map = match map_of(r, &decoded) {
                        Ok(data) => format!("<img alt=\"sentiment map of {0}\" src=\"data:image/jpeg;base64,{data}\">", escape(&r.image)),
                        Err(e) => format!("<span class=\"missing\">no map: {}</span>", escape(&format!("{e:#}"))),
                    };
                    (img, map)
                }
                Err(e) => (format!("<span class=\"missing\">{}: {}</span>", escape(&r.image), escape(&e.to_string())), String::new()),
            };
            let label = if r.label == 1 { "positive" } else { "negative" };
            let _ = write!(s, "<figure>{img}{map}<figcaption>{}<br>true {label}, p(positive) {:.2}</figcaption></figure>", escape(&r.image), r.p_positive_oversample);
        }
        s.push_str("</div>");
    }
    s.push_str("</div>");
    s
}

fn jpeg_base64(img: &image::RgbImage) -> Result<String> {
    use base64::Engine;
    let small = image::DynamicImage::ImageRgb8(img.clone()).thumbnail(160, 160).to_rgb8();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80).encode_image(&small)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The sample images' sentiment maps (10 views), each from the model of
/// the fold that held the image out, as overlay thumbnails.
struct SampleMaps<'a> {
    run: &'a Path,
    dataset: &'a crate::data::Dataset,
    device: &'a burn::prelude::Device,
    /// Each fold's model, loaded once.
    nets: std::cell::RefCell<std::collections::HashMap<usize, std::rc::Rc<(crate::model::Net, crate::preprocess::Preprocess)>>>,
}

impl SampleMaps<'_> {
    fn thumbnail(&self, r: &Prediction, original: &image::RgbImage) -> Result<String> {
        let index = self.dataset.items.iter().position(|i| i.name == r.image).with_context(|| format!("{} is not in the dataset", r.image))?;
        let fold = self.dataset.folds.iter().find(|f| f.test.contains(&index)).with_context(|| format!("no fold holds {} out", r.image))?.number;
        let loaded = self.nets.borrow().get(&fold).cloned();
        let model = match loaded {
            Some(m) => m,
            None => {
                let saved = crate::model::saved::SavedModel::load(&crate::eval::run_dir::RunDir::new(self.run).fold(fold).model())?;
                let m = std::rc::Rc::new((crate::model::Net::new(saved.spec, &saved.weights, self.device)?, saved.preprocess));
                self.nets.borrow_mut().insert(fold, m.clone());
                m
            }
        };
        let (net, pre) = &*model;
        let mapper = crate::eval::maps::Mapper::new(net, None, None).map_err(anyhow::Error::msg)?;
        let m = crate::eval::maps::image_map(&mapper, pre, &pre.resize_image(original), crate::eval::scoring::Views::TenCrop);
        // The thumbnail's caption strip would be unreadable at 160 px: the figure's caption says it.
        let picture = super::overlay::overlay(original, &m.map, "", 480)?;
        jpeg_base64(&picture)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The Markdown as one HTML file: every `plots/…` picture inlined as a data
/// URI, so the file can be mailed or opened anywhere.
pub fn html(title: &str, md: &str, dir: &Path, samples: &str) -> Result<String> {
    use base64::Engine;
    use pulldown_cmark::{html::push_html, Event, Options, Parser, Tag};
    let mut events = Vec::new();
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        let event = match event {
            Event::Start(Tag::Image { link_type, dest_url, title, id }) if !dest_url.starts_with("data:") => {
                let path = dir.join(dest_url.as_ref());
                let bytes = std::fs::read(&path).with_context(|| format!("embedding {}", path.display()))?;
                let mime = if dest_url.ends_with(".svg") { "image/svg+xml" } else { "image/png" };
                let data = format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes));
                Event::Start(Tag::Image { link_type, dest_url: data.into(), title, id })
            }
            Event::Html(h) | Event::InlineHtml(h) if h.trim() == SAMPLES_MARK => Event::Html(samples.to_string().into()),
            other => other,
        };
        events.push(event);
    }
    let mut body = String::new();
    push_html(&mut body, events.into_iter());
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head><body>\n{body}<script>{}</script></body></html>\n",
        escape(title),
        STYLE,
        IMAGE_CHECK
    ))
}

/// After loading, every picture that did not decode is reported on the
/// console and counted in `<body data-images>` ("ok" or "broken: N"), which
/// `scripts/check-report-html.sh` reads from headless Chromium.
const IMAGE_CHECK: &str = "window.addEventListener('load',function(){var b=[].filter.call(document.images,function(i){return !(i.complete&&i.naturalWidth>0)});\
b.forEach(function(i){console.error('missing image: '+(i.alt||i.src.slice(0,40)))});document.body.dataset.images=b.length?'broken: '+b.length:'ok'});";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}\
img{max-width:100%}pre{background:#f6f6f6;padding:.8em;overflow-x:auto}code{font-size:13px}blockquote{border-left:4px solid #e0a000;margin:0;padding:.2em 1em;background:#fff8e0}\
.samples .row{display:flex;flex-wrap:wrap;gap:10px}.samples figure{margin:0;width:170px;font-size:12px;overflow-wrap:anywhere}.samples img{width:160px;height:160px;object-fit:cover;border-radius:4px}.missing{color:#a00}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demote_lowers_headings_outside_code_and_drops_the_command() {
        let md = "# Title\n\ntext\n\n```toml\n# a comment, not a heading\n```\n\nCommand:\n\n```sh\ndeepsent crossval\n```\n";
        assert_eq!(demote(md, 2), "### Title\n\ntext\n\n```toml\n# a comment, not a heading\n```\n\n");
    }

    #[test]
    fn sample_groups_split_by_confidence_and_mistakes() {
        let row = |image: &str, label: usize, p: f32| Prediction { image: image.into(), path: image.into(), label, p_positive_center: p, p_positive_oversample: p };
        let rows = [row("a", 1, 0.99), row("b", 0, 0.9), row("c", 0, 0.05), row("d", 1, 0.2), row("e", 1, 0.6)];
        let g = sample_groups(&rows);
        let names = |i: usize| g[i].1.iter().map(|r| r.image.as_str()).collect::<Vec<_>>();
        assert_eq!(names(0), ["a", "b", "e"]);
        assert_eq!(names(1), ["c", "d"]);
        assert_eq!(names(2), ["b", "d"], "worst first: b is off by 0.9, d by 0.8");
    }
}
