//! The pictures of an evaluation (`deepsent evaluate --out DIR`): the ROC
//! curve, the precision-recall curve and the reliability diagram, each as
//! `DIR/<name>.png` and `.svg`, the centre crop and (with oversampling) the
//! 10-crop drawn together.

use super::plot::{register_font, FONT};
use crate::eval::binary_metrics::{operating_points, ReliabilityBin};
use crate::eval::evaluate::Evaluation;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One way of scoring the images: its name, P(positive) per image, and its reliability bins.
struct Series<'a> {
    name: &'static str,
    scores: Vec<f64>,
    bins: &'a [ReliabilityBin],
    color: RGBColor,
}

/// Writes roc, pr and reliability (PNG and SVG) into `dir`; returns the files written.
pub fn evaluation_plots(e: &Evaluation, title: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    register_font();
    let labels: Vec<usize> = e.images.iter().map(|s| s.label).collect();
    let mut series = vec![Series { name: "centre crop", scores: e.images.iter().map(|s| s.positive).collect(), bins: &e.center.metrics.reliability, color: BLUE }];
    if let Some(ten) = &e.ten_crop {
        series.push(Series { name: "10-crop", scores: e.images.iter().map(|s| s.positive_10crop.unwrap_or(f64::NAN)).collect(), bins: &ten.metrics.reliability, color: RED });
    }
    let mut written = Vec::new();
    for (stem, kind) in [("roc", Kind::Roc), ("pr", Kind::Pr), ("reliability", Kind::Reliability)] {
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        draw(kind, &series, &labels, title, BitMapBackend::new(&png, (640, 560)).into_drawing_area()).map_err(|err| anyhow::anyhow!("drawing {}: {err}", png.display()))?;
        draw(kind, &series, &labels, title, SVGBackend::new(&svg, (640, 560)).into_drawing_area()).map_err(|err| anyhow::anyhow!("drawing {}: {err}", svg.display()))?;
        written.extend([png, svg]);
    }
    Ok(written)
}

#[derive(Clone, Copy)]
enum Kind {
    Roc,
    Pr,
    Reliability,
}

fn draw<DB: DrawingBackend>(kind: Kind, series: &[Series], labels: &[usize], title: &str, root: DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (caption, x_desc, y_desc) = match kind {
        Kind::Roc => ("ROC curve", "false positive rate", "true positive rate"),
        Kind::Pr => ("Precision-recall curve", "recall (positive class)", "precision"),
        Kind::Reliability => ("Reliability diagram", "predicted P(positive), mean of the bin", "fraction positive"),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{caption}: {title}"), (FONT, 17))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).label_style((FONT, 13)).axis_desc_style((FONT, 14)).draw()?;
    // The reference: chance (ROC), the positive share (PR), perfect calibration.
    let positives = labels.iter().filter(|&&y| y == 1).count();
    let share = positives as f64 / labels.len().max(1) as f64;
    let (reference, reference_name) = match kind {
        Kind::Roc => (vec![(0.0, 0.0), (1.0, 1.0)], "chance".to_string()),
        Kind::Pr => (vec![(0.0, share), (1.0, share)], format!("chance ({:.0} % positive)", 100.0 * share)),
        Kind::Reliability => (vec![(0.0, 0.0), (1.0, 1.0)], "perfectly calibrated".to_string()),
    };
    let grey = BLACK.mix(0.4);
    chart
        .draw_series(LineSeries::new(reference, grey.stroke_width(1)))?
        .label(reference_name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    for s in series {
        let color = s.color;
        let points: Vec<(f64, f64)> = match kind {
            Kind::Roc => roc_points(&s.scores, labels),
            Kind::Pr => pr_points(&s.scores, labels),
            Kind::Reliability => s.bins.iter().filter(|b| b.images > 0).map(|b| (b.mean_score, b.positive_fraction)).collect(),
        };
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        if let Kind::Reliability = kind {
            // A dot per bin, its area the bin's share of the images.
            let n = labels.len().max(1) as f64;
            let dots = s.bins.iter().filter(|b| b.images > 0).map(|b| Circle::new((b.mean_score, b.positive_fraction), (3.0 + 12.0 * (b.images as f64 / n).sqrt()) as i32, color.mix(0.5).filled()));
            chart.draw_series(dots)?;
        }
    }
    let position = match kind {
        Kind::Pr => SeriesLabelPosition::LowerLeft,
        _ => SeriesLabelPosition::LowerRight,
    };
    chart.configure_series_labels().position(position).label_font((FONT, 13)).background_style(WHITE.mix(0.9)).border_style(BLACK.mix(0.3)).draw()?;
    root.present()?;
    Ok(())
}

/// (false positive rate, true positive rate) from (0, 0) to (1, 1).
fn roc_points(scores: &[f64], labels: &[usize]) -> Vec<(f64, f64)> {
    let p = labels.iter().filter(|&&y| y == 1).count().max(1) as f64;
    let q = labels.iter().filter(|&&y| y != 1).count().max(1) as f64;
    std::iter::once((0.0, 0.0)).chain(operating_points(scores, labels).iter().map(|o| (o.false_positive as f64 / q, o.true_positive as f64 / p))).collect()
}

/// (recall, precision) at each threshold, from the highest.
fn pr_points(scores: &[f64], labels: &[usize]) -> Vec<(f64, f64)> {
    let p = labels.iter().filter(|&&y| y == 1).count().max(1) as f64;
    operating_points(scores, labels).iter().map(|o| (o.true_positive as f64 / p, o.true_positive as f64 / (o.true_positive + o.false_positive).max(1) as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_by_hand() {
        // Scores 0.9 (+), 0.8 (−), 0.4 (+), 0.1 (−).
        let (scores, labels) = ([0.9, 0.8, 0.4, 0.1], [1, 0, 1, 0]);
        assert_eq!(roc_points(&scores, &labels), [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert_eq!(pr_points(&scores, &labels), [(0.5, 1.0), (0.5, 0.5), (1.0, 2.0 / 3.0), (1.0, 0.5)]);
    }
}
