//! A 2×2 confusion matrix as a small heat map (PNG).

use super::plot::{register_font, FONT};
use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// `m[true][predicted]`, 0 negative, 1 positive.
pub fn confusion_plot(m: [[usize; 2]; 2], title: &str, png: &Path) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(png, (360, 340)).into_drawing_area();
    draw(m, title, root).map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))
}

fn draw<DB: DrawingBackend>(m: [[usize; 2]; 2], title: &str, root: DrawingArea<DB, plotters::coord::Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => ["negative", "positive"].get(*i as usize).map_or(String::new(), |s| s.to_string()),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(&root).caption(title, (FONT, 15)).margin(10).x_label_area_size(44).y_label_area_size(80).build_cartesian_2d((0..1).into_segmented(), (0..1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(2)
        .y_labels(2)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .x_desc("predicted")
        .y_desc("true")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 13))
        .draw()?;
    let total: usize = m.iter().flatten().sum::<usize>().max(1);
    for (t, row) in m.iter().enumerate() {
        let row_total = row.iter().sum::<usize>().max(1);
        for (p, &n) in row.iter().enumerate() {
            let share = n as f64 / row_total as f64;
            let color = if t == p { RGBColor(40, 110, 190) } else { RGBColor(200, 70, 50) };
            let (x, y) = (p as i32, t as i32);
            let corners = [(SegmentValue::Exact(x), SegmentValue::Exact(y)), (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1))];
            chart.draw_series(std::iter::once(Rectangle::new(corners, color.mix(0.15 + 0.8 * share).filled())))?;
            let text = format!("{n} ({:.0}%)", 100.0 * n as f64 / total as f64);
            let style = (FONT, 16).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(text, (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)), style)))?;
        }
    }
    root.present()?;
    Ok(())
}
