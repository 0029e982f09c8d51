//! Training curves of a crossval run: loss and centre-crop test accuracy
//! per epoch, one line per fold (from `RUN/foldK/log.jsonl`).

use super::plot::{register_font, FONT};
use crate::train::fit::EpochLog;
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// One fold's curve: its per-epoch log and the test accuracy before training.
pub struct FoldCurve {
    pub fold: usize,
    pub before: Option<f64>,
    pub log: Vec<EpochLog>,
}

/// Each fold's curve from a finished run, in fold order; folds without a log are left out.
pub fn read_logs(run: &Path, results: &crate::eval::crossval::CrossvalResults) -> Result<Vec<FoldCurve>> {
    let mut out = Vec::new();
    for f in &results.folds {
        let k = f.fold;
        let path = crate::eval::run_dir::RunDir::new(run).fold(k).train.log();
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let rows = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}: bad log line", path.display(), i + 1)))
            .collect::<Result<Vec<EpochLog>>>()?;
        out.push(FoldCurve { fold: k, before: f.acc_center_before, log: rows });
    }
    Ok(out)
}

/// Writes a PNG with two panels: training loss and test accuracy against
/// epoch (epoch 0: the accuracy before training, where it was measured).
pub fn training_curves(logs: &[FoldCurve], title: &str, png: &Path) -> Result<()> {
    register_font();
    draw(logs, title, BitMapBackend::new(png, (1000, 380)).into_drawing_area()).map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))
}

fn draw<DB: DrawingBackend>(logs: &[FoldCurve], title: &str, root: DrawingArea<DB, plotters::coord::Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 20))?;
    let (left, right) = root.split_horizontally(500);
    let epochs = logs.iter().flat_map(|c| c.log.iter().map(|e| e.epoch)).max().unwrap_or(1).max(1) as f64;
    let max_loss = logs.iter().flat_map(|c| c.log.iter().map(|e| e.loss)).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-3) * 1.05;
    // Accuracy from a tenth below the lowest point, so flat curves stay readable.
    let lowest = logs.iter().flat_map(|c| c.before.into_iter().chain(c.log.iter().filter_map(|e| e.test_acc))).fold(1.0f64, f64::min);
    let min_acc = ((lowest - 0.05) * 10.0).floor().max(0.0) / 10.0;
    let panels: [(&DrawingArea<DB, _>, &str, f64, f64, fn(&EpochLog) -> Option<f64>, bool); 2] = [
        (&left, "training loss", 0.0, max_loss, |e| Some(e.loss), false),
        (&right, "test accuracy (centre crop)", min_acc, 1.0, |e| e.test_acc, true),
    ];
    for (area, what, lo, hi, value, with_before) in panels {
        let mut chart = ChartBuilder::on(area).margin(10).x_label_area_size(36).y_label_area_size(50).build_cartesian_2d(0.0..epochs + 0.5, lo..hi)?;
        chart.configure_mesh().x_desc("epoch").y_desc(what).label_style((FONT, 13)).axis_desc_style((FONT, 14)).draw()?;
        for (i, curve) in logs.iter().enumerate() {
            let (fold, color) = (curve.fold, Palette99::pick(i).to_rgba());
            let before = curve.before.filter(|_| with_before).map(|v| (0.0, v));
            let points: Vec<(f64, f64)> = before.into_iter().chain(curve.log.iter().filter_map(|e| value(e).map(|v| (e.epoch as f64, v)))).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(format!("fold {fold}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).label_font((FONT, 12)).background_style(WHITE.mix(0.85)).border_style(BLACK.mix(0.3)).draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(folds: &[usize]) -> crate::eval::crossval::CrossvalResults {
        let scored = serde_json::json!({"accuracy": 0.5, "tied": 0, "predicted_positive": 1, "images": 2, "degenerate": null});
        let fold = |k: usize| serde_json::json!({"fold": k, "acc_center": 0.5, "acc_oversample": 0.5, "epochs": 1.0, "iterations": 1, "train_seconds": 1.0,
            "center": scored, "oversample": scored, "final_loss": 0.7, "probe_init": null, "acc_center_before": 0.6});
        let config = serde_json::json!({"backbone": "squeezenet1.0", "weights": "w", "dataset": "d", "surgery": "", "solver": crate::train::SolverSettings::default(),
            "seed": 0, "folds": folds, "head_init": "random", "new_lr_mult": 10.0});
        serde_json::from_value(serde_json::json!({"config": config, "folds": folds.iter().map(|&k| fold(k)).collect::<Vec<_>>(), "mean_center": 0.5, "std_center": 0.0,
            "mean_oversample": 0.5, "std_oversample": 0.0, "std_kind": "population", "degenerate_folds": []}))
        .unwrap()
    }

    #[test]
    fn logs_are_read_per_fold_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let line = |e: usize| format!("{{\"epoch\":{e},\"iteration\":{e},\"lr\":0.001,\"loss\":0.5,\"test_acc\":0.75,\"seconds\":1.0}}\n");
        std::fs::create_dir_all(dir.path().join("fold1")).unwrap();
        std::fs::write(dir.path().join("fold1/log.jsonl"), line(1) + &line(2)).unwrap();
        let curves = read_logs(dir.path(), &results(&[1, 3])).unwrap();
        assert_eq!(curves.len(), 1, "fold 3 has no log");
        assert_eq!((curves[0].fold, curves[0].before, curves[0].log.len()), (1, Some(0.6), 2));
        training_curves(&curves, "t", &dir.path().join("c.png")).unwrap();
        assert!(std::fs::metadata(dir.path().join("c.png")).unwrap().len() > 1000);

        std::fs::create_dir_all(dir.path().join("fold2")).unwrap();
        std::fs::write(dir.path().join("fold2/log.jsonl"), line(1) + "{\"epoch\": oops}\n").unwrap();
        let err = format!("{:#}", read_logs(dir.path(), &results(&[2])).err().unwrap());
        assert!(err.contains("fold2/log.jsonl:2"), "{err}");
    }
}
