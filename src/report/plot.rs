//! Plots (plotters): PNG for reading, SVG for print. Text is drawn with the
//! DejaVu Sans font compiled into the binary (the `dejavu` crate), so plots
//! look the same on machines without system fonts.

use crate::eval::linear::Classifier;
use crate::eval::probe::ProbeReport;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

pub(crate) const FONT: &str = "sans-serif";

pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err() {
            eprintln!("warning: the bundled font could not be loaded; plot text may be missing");
        }
    });
}

/// Writes `stem.png` and `stem.svg`.
pub fn probe_plot(report: &ProbeReport, stem: &Path) -> anyhow::Result<()> {
    register_font();
    let (w, h) = (900, 260 + 26 * layer_names(report).len() as u32);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw_probe(report, BitMapBackend::new(&png, (w, h)).into_drawing_area())
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
    draw_probe(report, SVGBackend::new(&svg, (w, h)).into_drawing_area())
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
    Ok(())
}

fn layer_names(report: &ProbeReport) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for l in &report.layers {
        if !names.contains(&l.layer) {
            names.push(l.layer.clone());
        }
    }
    names
}

/// Accuracy (x) against depth (y, input at the bottom), mean ± std over
/// folds per classifier; the paper's CaffeNet layers drawn at the same
/// relative depth.
fn draw_probe<DB: DrawingBackend>(report: &ProbeReport, root: DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let names = layer_names(report);
    let n = names.len().max(1);
    let top = (n - 1).max(1) as f64;
    let lows = report.layers.iter().map(|l| l.mean - l.std).chain(crate::report::paper::PROBES.iter().map(|p| p.1 .0 - p.1 .1));
    let x_min = (lows.fold(1.0f64, f64::min) * 20.0).floor() / 20.0;
    let trained = if report.unmoved_folds.is_empty() { "fine-tuned" } else { "trained; did not move" };
    let title = format!("Layer probes, {} ({})", report.model, if report.pretrained { "pretrained" } else { trained });
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(140)
        .build_cartesian_2d(x_min.max(0.0)..1.0, -0.6..(n as f64 - 0.4))?;
    chart
        .configure_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 { names.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
        })
        .x_desc("test accuracy (mean ± std over folds)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let series = [(Classifier::Svm, BLUE, -0.12, "linear SVM"), (Classifier::Softmax, RED, 0.12, "softmax")];
    for (kind, color, offset, label) in series {
        let points: Vec<(f64, f64, f64)> = report
            .layers
            .iter()
            .filter(|l| l.classifier == kind)
            .filter_map(|l| names.iter().position(|x| *x == l.layer).map(|i| (i as f64 + offset, l.mean, l.std)))
            .collect();
        chart
            .draw_series(points.iter().map(|&(y, m, s)| ErrorBar::new_horizontal(y, m - s, m, m + s, color.stroke_width(2), 8)))?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        chart.draw_series(LineSeries::new(points.iter().map(|&(y, m, _)| (m, y)), color.mix(0.5)))?;
    }
    let paper = &crate::report::paper::PROBES;
    let scale = top / (paper.len() - 1) as f64;
    for (pick, color, label) in [(0usize, BLUE, "paper, CaffeNet SVM (same relative depth)"), (1, RED, "paper, CaffeNet softmax")] {
        let points: Vec<(f64, f64)> = paper.iter().enumerate().map(|(i, p)| (if pick == 0 { p.1 .0 } else { p.2 .0 }, i as f64 * scale)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.mix(0.35).stroke_width(1)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.mix(0.35)));
        chart.draw_series(points.iter().map(|&(x, y)| TriangleMarker::new((x, y), 5, color.mix(0.35))))?;
        chart.draw_series(
            paper
                .iter()
                .enumerate()
                .filter(|_| pick == 0)
                .map(|(i, p)| Text::new(p.0.to_string(), (0.995 - 0.0, i as f64 * scale), (FONT, 11).into_font().color(&BLACK.mix(0.45)).pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Right, plotters::style::text_anchor::VPos::Center)))),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}
