//! Markdown tables of results, with the paper's numbers beside ours.

use crate::eval::crossval::CrossvalResults;
use crate::eval::linear::Classifier;
use crate::eval::probe::ProbeReport;
use std::fmt::Write;

/// Table 1: per fold and mean ± std, centre and 10-crop, with the paper's row.
pub fn crossval_table(r: &CrossvalResults, command: &str) -> String {
    let mut s = String::new();
    let c = &r.config;
    if r.did_not_move() {
        let _ = writeln!(s, "# Not fine-tuned — the network did not move: {}-fold cross-validation of {}, a linear probe\n", r.folds.len(), c.backbone);
        let _ = writeln!(s, "On every fold training changed the centre-crop test accuracy by at most one image: these rows measure the starting point (the head initialised by the probe, scored with a 10-crop average), not what fine-tuning adds.\n");
    } else {
        let _ = writeln!(s, "# Fine-tuning by {}-fold cross-validation: {}\n", r.folds.len(), c.backbone);
    }
    let _ = writeln!(s, "Dataset {}; surgery `{}`; head {:?}; seed {}.\n", c.dataset, c.surgery, c.head_init, c.seed);
    let _ = writeln!(s, "| fold | before fine-tuning | centre crop | 10-crop | train s |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for f in &r.folds {
        let mark = |d: &Option<String>| if d.is_some() { " (degenerate)" } else { "" };
        let _ = writeln!(
            s,
            "| {} | {} | {:.3}{} | {:.3}{} | {:.0} |",
            f.fold,
            f.acc_center_before.map_or("–".into(), |a| format!("{a:.3}")),
            f.acc_center,
            mark(&f.center.degenerate),
            f.acc_oversample,
            mark(&f.oversample.degenerate),
            f.train_seconds
        );
    }
    let _ = writeln!(s, "| **mean ± std** | | **{:.3} ± {:.3}** | **{:.3} ± {:.3}** | |", r.mean_center, r.std_center, r.mean_oversample, r.std_oversample);
    let ((pc, pcs), (po, pos)) = super::paper::FINETUNED;
    let _ = writeln!(s, "| paper (CaffeNet, fine-tuned) | | {pc:.3} ± {pcs:.3} | {po:.3} ± {pos:.3} | |");
    let _ = writeln!(s, "\nStandard deviation: {}. Solver: base lr {}, momentum {}, weight decay {}, ×{} every {} epochs, {} epochs, batch {} (micro-batches of {}), new layers' lr ×{}.", r.std_kind, c.solver.base_lr, c.solver.momentum, c.solver.weight_decay, c.solver.gamma, c.solver.step_epochs, c.solver.epochs, c.solver.batch, c.solver.micro_batch, c.new_lr_mult);
    if !r.degenerate_folds.is_empty() {
        let _ = writeln!(s, "\nDegenerate folds (tied or constant answers; their accuracy means nothing): {:?}.", r.degenerate_folds);
    }
    if !r.unmoved_folds.is_empty() && !r.did_not_move() {
        let _ = writeln!(s, "\nFolds where the network did not move (test accuracy within one image of before training): {:?}.", r.unmoved_folds);
    }
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```");
    s
}

/// Table 2: probe accuracy per layer (deepest first, as the paper lists
/// them), both classifiers, beside the paper's fine-tuned CaffeNet.
pub fn probe_table(r: &ProbeReport, command: &str) -> String {
    let mut s = String::new();
    let what = if r.pretrained { "pretrained (not fine-tuned)" } else { "fine-tuned, each fold's own model" };
    let _ = writeln!(s, "# Layer probes: {} — {}\n", r.model, what);
    let folds = r.layers.first().map_or(0, |l| l.folds.len());
    let _ = writeln!(s, "Weights: {}.\n", r.source);
    let _ = writeln!(s, "Dataset {}, {} folds; centre-crop activations, flattened; C by {}-fold CV on each fold's training part.\n", r.dataset, folds, r.settings.search.inner_folds);
    let _ = writeln!(s, "| layer | dims | linear SVM | softmax | C (SVM, per fold) | C (softmax, per fold) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let mut names: Vec<(&str, usize)> = Vec::new();
    for l in &r.layers {
        if !names.iter().any(|(n, _)| *n == l.layer) {
            names.push((&l.layer, l.dims));
        }
    }
    let cell = |layer: &str, kind: Classifier| -> (String, String) {
        match r.layers.iter().find(|l| l.layer == layer && l.classifier == kind) {
            Some(l) => (
                format!("{:.3} ± {:.3}", l.mean, l.std),
                l.folds.iter().map(|f| format!("{:.0e}", f.c)).collect::<Vec<_>>().join(" "),
            ),
            None => ("–".into(), String::new()),
        }
    };
    for (layer, dims) in names.iter().rev() {
        let (svm, svm_c) = cell(layer, Classifier::Svm);
        let (soft, soft_c) = cell(layer, Classifier::Softmax);
        let _ = writeln!(s, "| {layer} | {dims} | {svm} | {soft} | {svm_c} | {soft_c} |");
    }
    let _ = writeln!(s, "\nThe paper (fine-tuned CaffeNet, Table 2):\n");
    let _ = writeln!(s, "| layer | linear SVM | softmax |");
    let _ = writeln!(s, "|---|---|---|");
    for (layer, (sm, ss), (xm, xs)) in super::paper::PROBES.iter().rev() {
        let _ = writeln!(s, "| {layer} | {sm:.3} ± {ss:.3} | {xm:.3} ± {xs:.3} |");
    }
    let _ = writeln!(
        s,
        "\nStandard deviation: {}. SVM: squared hinge, penalised intercept (scikit-learn LinearSVC); softmax: logistic regression, unpenalised intercept (scikit-learn LogisticRegression). C grid: {:?} / mean ‖x‖². Fitting the classifiers: {:.0} s over all folds.",
        r.std_kind, r.settings.search.relative_grid, r.seconds
    );
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```");
    s
}

/// One fine-tuned variant of a surgery table.
pub struct VariantRow<'a> {
    pub name: String,
    /// The paper's variant it is or stands for.
    pub paper: Option<&'static str>,
    pub parameters: usize,
    pub new_layers: Vec<String>,
    pub results: &'a CrossvalResults,
}

/// Tables 3 and 4: each surgery variant's cross-validated accuracy, its
/// size, and the paper's CaffeNet number for the variant it stands for.
pub fn surgery_table(backbone: &str, rows: &[VariantRow], command: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Network surgery: {backbone}\n");
    let _ = writeln!(s, "| variant | paper's variant | surgery | parameters | new layers | centre crop | 10-crop | paper centre | paper 10-crop |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let paper = r.paper.and_then(|v| super::paper::SURGERY.iter().find(|p| p.0 == v));
        let (pc, po) = paper.map_or(("–".into(), "–".into()), |p| (format!("{:.3}", p.1), format!("{:.3}", p.2)));
        let mut mark = if r.results.degenerate_folds.is_empty() { String::new() } else { format!(" (degenerate folds {:?})", r.results.degenerate_folds) };
        if !r.results.unmoved_folds.is_empty() {
            mark += &format!(" (did not move on folds {:?})", r.results.unmoved_folds);
        }
        let _ = writeln!(
            s,
            "| {} | {} | `{}` | {} | {} | {:.3} ± {:.3}{mark} | {:.3} ± {:.3} | {pc} | {po} |",
            r.name,
            r.paper.unwrap_or("–"),
            r.results.config.surgery,
            r.parameters,
            if r.new_layers.is_empty() { "none".to_string() } else { r.new_layers.join(", ") },
            r.results.mean_center,
            r.results.std_center,
            r.results.mean_oversample,
            r.results.std_oversample,
        );
    }
    let _ = writeln!(s, "\nMean ± std over folds ({}). Recipes per variant:\n", rows.first().map_or("", |r| r.results.std_kind.as_str()));
    for r in rows {
        let c = &r.results.config;
        let _ = writeln!(
            s,
            "- {}: head {:?}, new layers' lr ×{}, base lr {}, ×{} every {} epochs, {} epochs, batch {}, seed {}; {} folds.",
            r.name, c.head_init, c.new_lr_mult, c.solver.base_lr, c.solver.gamma, c.solver.step_epochs, c.solver.epochs, c.solver.batch, c.seed, r.results.folds.len()
        );
    }
    let _ = writeln!(s, "\nThe paper (CaffeNet, Tables 3 and 4):\n\n| variant | centre crop | 10-crop |\n|---|---|---|");
    for (v, c, o) in super::paper::SURGERY.iter() {
        let _ = writeln!(s, "| {v} | {c:.3} | {o:.3} |");
    }
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```");
    s
}

impl<'a> VariantRow<'a> {
    /// The row of a finished run: named after its preset when its surgery
    /// is one, else `fallback`; parameters counted on the operated spec.
    pub fn of_run(fallback: &str, results: &'a CrossvalResults) -> anyhow::Result<VariantRow<'a>> {
        use crate::model::surgery::{parse_ops, presets, Patient};
        let c = &results.config;
        let arch: crate::model::Arch = c.backbone.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let patient = Patient::structure(arch.spec()?)?.operate(&parse_ops(&c.surgery)?, 0)?;
        let preset = presets(&c.backbone).iter().find(|p| p.ops == c.surgery);
        Ok(VariantRow {
            name: preset.map_or_else(|| fallback.to_string(), |p| p.name.to_string()),
            paper: preset.and_then(|p| p.paper),
            parameters: patient.spec.parameter_count()?,
            new_layers: patient.new_layers.clone(),
            results,
        })
    }
}
