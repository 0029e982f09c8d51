//! Markdown tables of results, with the paper's numbers beside ours.

use crate::eval::crossval::{CrossvalResults, Standing, BARELY_MOVED};
use crate::eval::movement::largest_pretrained;
use crate::train::solver::{Augment, BatchNormMode, DecayTarget, Schedule};
use crate::train::SolverSettings;
use crate::eval::linear::Classifier;
use crate::eval::probe::ProbeReport;
use std::fmt::Write;

/// Table 1: per fold the start (the probe-initialised network), the
/// fine-tuned accuracy and the gain, how far the pretrained layers moved,
/// the paired summary, the paper's row, the search and the layer movement.
pub fn crossval_table(r: &CrossvalResults, command: &str) -> String {
    let mut s = String::new();
    let c = &r.config;
    match r.standing() {
        Standing::DidNotMove => {
            let _ = writeln!(s, "# Not fine-tuned — the network did not move: {}-fold cross-validation of {}, a linear probe\n", r.folds.len(), c.backbone);
            let _ = writeln!(s, "On every fold training changed the centre-crop test accuracy by at most one image: these rows measure the starting point (the head initialised by the probe, scored with a 10-crop average), not what fine-tuning adds.\n");
        }
        Standing::MostlyDidNotMove => {
            let _ = writeln!(s, "# Mostly not fine-tuned — the network did not move on {} of {} folds: cross-validation of {}\n", r.unmoved_folds.len(), r.folds.len(), c.backbone);
            let _ = writeln!(s, "On folds {:?} training changed the centre-crop test accuracy by at most one image: there the rows measure the starting point, not what fine-tuning adds.\n", r.unmoved_folds);
        }
        Standing::NotShown => {
            let _ = writeln!(s, "# Not shown to be fine-tuned — test accuracy within one image of the start on {} of {} folds: cross-validation of {}\n", r.unchanged_folds.len(), r.folds.len(), c.backbone);
            let _ = writeln!(s, "On folds {:?} training changed the centre-crop test accuracy by at most one image (the weights moved on some of them): there the rows measure the starting point, not what fine-tuning adds.\n", r.unchanged_folds);
        }
        Standing::Moved => {
            let _ = writeln!(s, "# Fine-tuning by {}-fold cross-validation: {}\n", r.folds.len(), c.backbone);
        }
    }
    let _ = writeln!(s, "Dataset {}; surgery `{}`; head {:?}; seed {}.\n", c.dataset, c.recipe.surgery, c.recipe.head_init, c.recipe.seed);
    let searched = r.folds.iter().any(|f| f.search.is_some());
    // "After training", not "fine-tuned": whether training fine-tuned anything is the title's verdict.
    let _ = writeln!(s, "| fold | start (before training) | after training, centre crop | gain | 10-crop | largest change of a pretrained layer |{} train s |", if searched { " chosen by the search |" } else { "" });
    let _ = writeln!(s, "|---|---|---|---|---|---|{}---|", if searched { "---|" } else { "" });
    for f in &r.folds {
        let mark = |d: &Option<String>| if d.is_some() { " (degenerate)" } else { "" };
        let chosen = f.search.as_ref().map_or(String::new(), |x| format!(" {} |", crate::eval::search::describe(x.chosen_values())));
        let _ = writeln!(
            s,
            "| {} | {} | {:.3}{} | {} | {:.3}{} | {} |{chosen} {:.0} |",
            f.fold,
            f.acc_center_before.map_or("–".into(), |a| format!("{a:.3}")),
            f.acc_center,
            mark(&f.center.degenerate),
            f.acc_center_before.map_or("–".into(), |a| format!("{:+.3}", f.acc_center - a)),
            f.acc_oversample,
            mark(&f.oversample.degenerate),
            largest_pretrained(&f.movement).map_or("–".into(), |m| format!("{m:.2e}")),
            f.train_seconds
        );
    }
    let start_mean = r.mean_center_before().map_or(String::new(), |m| format!("{m:.3}"));
    let gain = r.paired_center.as_ref().map_or(String::new(), |p| format!("{:+.3}", p.mean));
    let _ = writeln!(
        s,
        "| **mean ± std** | {start_mean} | **{:.3} ± {:.3}** | {gain} | **{:.3} ± {:.3}** | |{} |",
        r.mean_center,
        r.std_center,
        r.mean_oversample,
        r.std_oversample,
        if searched { " |" } else { "" }
    );
    let ((pc, pcs), (po, pos)) = super::paper::FINETUNED;
    let _ = writeln!(s, "| paper (CaffeNet, fine-tuned) | | {pc:.3} ± {pcs:.3} | | {po:.3} ± {pos:.3} | |{} |", if searched { " |" } else { "" });
    if let Some(p) = &r.paired_center {
        let _ = writeln!(
            s,
            "\nGain over the start, paired by fold (centre crop): mean {:+.4}, sample std {:.4}; improved on {} of {} folds, worse on {}, unchanged on {}; 95 % interval of the mean [{:+.4}, {:+.4}] (Student t, {} degrees of freedom).",
            p.mean, p.std, p.improved, p.folds, p.worse, p.unchanged, p.ci95.0, p.ci95.1, p.folds - 1
        );
    }
    let _ = writeln!(s, "\nStandard deviation: {}. Solver: {}.", r.std_kind, describe_recipe(&c.recipe));
    if !c.search.is_empty() {
        let _ = writeln!(s, "\nSearched per fold, overriding the solver above with each fold's choice: {}.", describe_grid(&c.search));
    }
    if !r.degenerate_folds.is_empty() {
        let _ = writeln!(s, "\nDegenerate folds (tied or constant answers; their accuracy means nothing): {:?}.", r.degenerate_folds);
    }
    if !r.unmoved_folds.is_empty() && !r.did_not_move() {
        let weights = if r.folds.iter().any(|f| !f.movement.is_empty()) {
            format!(", pretrained weights changed by < {BARELY_MOVED:.0e}")
        } else {
            "; this run did not record how far the weights moved".to_string()
        };
        let _ = writeln!(s, "\nFolds where the network did not move (test accuracy within one image of before training{weights}): {:?}.", r.unmoved_folds);
    }
    if searched {
        s.push_str(&search_section(r));
    }
    s.push_str(&movement_section(r));
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```");
    s
}

/// The recipe's training in words: the paper's settings, and those of the options that differ from it.
pub fn describe_recipe(r: &crate::train::Recipe) -> String {
    let (s, new_lr_mult) = (&r.solver, r.new_lr_mult);
    let d = SolverSettings::default();
    let schedule = match s.schedule {
        Schedule::Step => format!("×{} every {} epochs", s.gamma, s.step_epochs),
        Schedule::Cosine => "cosine decay to 0".to_string(),
    };
    let mut words = format!(
        "base lr {}, {schedule}, momentum {}, weight decay {}, {} epochs, batch {} (micro-batches of {}), new layers' lr ×{new_lr_mult}",
        s.base_lr, s.momentum, s.weight_decay, s.epochs, s.batch, s.micro_batch
    );
    if s.warmup_epochs != d.warmup_epochs {
        let _ = write!(words, ", {} epoch(s) of warm-up", s.warmup_epochs);
    }
    if s.layer_decay != d.layer_decay {
        let _ = write!(words, ", layer-wise rate decay {}", s.layer_decay);
    }
    if s.freeze_layers != d.freeze_layers {
        let _ = write!(words, ", the bottom {} weight layers frozen", s.freeze_layers);
    }
    if s.decay_to == DecayTarget::Pretrained {
        words.push_str(", weight decay toward the pretrained weights (L2-SP)");
    }
    if s.swa_epochs != d.swa_epochs {
        let _ = write!(words, ", weights averaged over the last {} epochs (SWA)", s.swa_epochs);
    }
    if s.augment == Augment::Strong {
        words.push_str(", strong augmentation (random-resized crops, colour jitter)");
    }
    if s.batchnorm == BatchNormMode::Batch {
        words.push_str(", BatchNorm on batch statistics");
    }
    if s.label_smoothing != d.label_smoothing {
        let _ = write!(words, ", label smoothing {}", s.label_smoothing);
    }
    if r.wise_alpha != 1.0 {
        let _ = write!(words, ", ending {} of the way from the start to the trained weights (WiSE-FT)", r.wise_alpha);
    }
    words
}

/// Per fold, every point of the nested search with its held-out score, the
/// choice, and what the search cost.
fn search_section(r: &CrossvalResults) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\n## Nested search\n");
    let inner_folds = r.config.inner_folds;
    let scored = if inner_folds > 1 {
        format!("on each of {inner_folds} stratified inner folds of that part, trained on the others and scored on it (centre crop); a point's score is the mean over the inner folds")
    } else {
        "on that part less a stratified held-out slice, and scored on the slice (centre crop)".to_string()
    };
    let shared = if r.config.search.iter().any(|k| crate::train::Recipe::AFTER_TRAINING.contains(&k.key.as_str())) {
        " Points that differ only in `wise_alpha` are one training, scored at each α; its images and seconds are counted on the first of them."
    } else {
        ""
    };
    let _ = writeln!(s, "Each fold's settings were chosen on its training part only: every point below was trained {scored}; the best held-out accuracy (then the lowest held-out loss) was chosen and trained again on the whole training part. The test part was not used to choose.{shared}\n");
    let _ = writeln!(s, "| fold | point | held-out accuracy before → after | held-out loss | largest pretrained change | images trained | seconds |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let (mut images, mut seconds) = (0usize, 0.0f64);
    for f in &r.folds {
        let Some(x) = &f.search else { continue };
        images += x.images_trained + f.iterations * r.config.recipe.solver.batch;
        seconds += x.seconds + f.train_seconds;
        for (j, p) in x.points.iter().enumerate() {
            let chosen = if j == x.chosen { " **(chosen)**" } else { "" };
            let _ = writeln!(
                s,
                "| {} | {}{chosen} | {} → {:.3} | {:.4} | {} | {} | {:.0} |",
                f.fold,
                crate::eval::search::describe(&p.values),
                p.val_accuracy_before.map_or("–".into(), |a| format!("{a:.3}")),
                p.val_accuracy,
                p.val_loss,
                p.largest_pretrained_change.map_or("–".into(), |m| format!("{m:.2e}")),
                p.images_trained,
                p.seconds
            );
        }
        if x.inner_folds > 1 {
            let _ = writeln!(s, "| {} | mean over {} inner folds of the {} training images, each held out in turn | | | | | |", f.fold, x.inner_folds, x.inner_val + x.inner_train);
        } else {
            let _ = writeln!(s, "| {} | held out {} of {} training images | | | | | |", f.fold, x.inner_val, x.inner_val + x.inner_train);
        }
    }
    let _ = writeln!(s, "\nCost of the whole run, search and final training together: {images} training images passed forward and backward, {:.1} hours of training.", seconds / 3600.0);
    s
}

/// How far each layer moved on each fold (relative L2 change of its weights).
fn movement_section(r: &CrossvalResults) -> String {
    let mut s = String::new();
    let Some(first) = r.folds.iter().find(|f| !f.movement.is_empty()) else { return s };
    let _ = writeln!(s, "\n## How far each layer moved\n");
    let _ = writeln!(s, "Relative L2 change of each layer's weights, ‖w − w₀‖ / ‖w₀‖, from the start of training (pretrained layers: the ImageNet weights; new layers: their initialisation). Frozen layers show 0.\n");
    let _ = write!(s, "| layer |");
    for f in &r.folds {
        let _ = write!(s, " fold {} |", f.fold);
    }
    let _ = writeln!(s, "\n|---|{}", "---|".repeat(r.folds.len()));
    for (i, layer) in first.movement.iter().enumerate() {
        let _ = write!(s, "| {}{} |", layer.layer, if layer.new { " (new)" } else { "" });
        for f in &r.folds {
            let _ = write!(s, " {} |", f.movement.get(i).filter(|m| m.layer == layer.layer).map_or("–".into(), |m| format!("{:.2e}", m.relative_change)));
        }
        s.push('\n');
    }
    s
}

/// Table 2: probe accuracy per layer (deepest first, as the paper lists
/// them), both classifiers, beside the paper's fine-tuned CaffeNet.
pub fn probe_table(r: &ProbeReport, command: &str) -> String {
    let mut s = String::new();
    let trained_folds = r.layers.first().map_or(0, |l| l.folds.len());
    let what = if r.pretrained {
        "pretrained (not fine-tuned)".to_string()
    } else if r.unmoved_folds.is_empty() {
        "fine-tuned, each fold's own model".to_string()
    } else if r.unmoved_folds.len() >= trained_folds {
        "each fold's trained model — not fine-tuned: the network did not move in training (the probe-initialised start)".to_string()
    } else {
        format!("each fold's trained model — the network did not move in training on folds {:?}", r.unmoved_folds)
    };
    let _ = writeln!(s, "# Layer probes: {} — {}\n", r.model, what);
    let folds = trained_folds;
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

/// One trained variant of a surgery table.
pub struct VariantRow<'a> {
    pub name: String,
    /// The paper's variant it is or stands for.
    pub paper: Option<&'static str>,
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
        let (parameters, new_layers) = match &r.results.network {
            Some(n) if n.new_layers.is_empty() => (n.parameters.to_string(), "none".to_string()),
            Some(n) => (n.parameters.to_string(), n.new_layers.join(", ")),
            None => ("–".into(), "–".into()),
        };
        let paper = r.paper.and_then(|v| super::paper::SURGERY.iter().find(|p| p.0 == v));
        let (pc, po) = paper.map_or(("–".into(), "–".into()), |p| (format!("{:.3}", p.1), format!("{:.3}", p.2)));
        let mut mark = if r.results.degenerate_folds.is_empty() { String::new() } else { format!(" (degenerate folds {:?})", r.results.degenerate_folds) };
        if r.results.standing() != Standing::Moved {
            // The row is not a fine-tuned variant: say so, as its run's title does.
            mark += &format!(" ({})", r.results.verdict.split(':').next().unwrap_or_default());
        }
        if !r.results.unmoved_folds.is_empty() {
            mark += &format!(" (did not move on folds {:?})", r.results.unmoved_folds);
        }
        let _ = writeln!(
            s,
            "| {} | {} | `{}` | {} | {} | {:.3} ± {:.3}{mark} | {:.3} ± {:.3} | {pc} | {po} |",
            r.name,
            r.paper.unwrap_or("–"),
            r.results.config.recipe.surgery,
            parameters,
            new_layers,
            r.results.mean_center,
            r.results.std_center,
            r.results.mean_oversample,
            r.results.std_oversample,
        );
    }
    let _ = writeln!(s, "\nMean ± std over folds ({}). Recipes per variant:\n", rows.first().map_or("", |r| r.results.std_kind.as_str()));
    for r in rows {
        let c = &r.results.config;
        // A searched setting overrides the solver's value fold by fold: say which were chosen.
        let searched = if c.search.is_empty() {
            String::new()
        } else {
            let chosen: Vec<String> = r.results.folds.iter().map(|f| f.search.as_ref().map_or("–".into(), |x| crate::eval::search::describe(x.chosen_values()))).collect();
            format!("; searched per fold, overriding the solver: {} (chosen by fold: {})", describe_grid(&c.search), chosen.join(", "))
        };
        let _ = writeln!(
            s,
            "- {}: head {:?}, {}, seed {}{searched}; {} folds{}.",
            r.name,
            c.recipe.head_init,
            describe_recipe(&c.recipe),
            c.recipe.seed,
            r.results.folds.len(),
            r.results.paired_center.as_ref().map_or(String::new(), |p| format!("; gain over its start {:+.3} (improved on {} of {} folds, worse on {})", p.mean, p.improved, p.folds, p.worse))
        );
    }
    let _ = writeln!(s, "\nThe paper (CaffeNet, Tables 3 and 4):\n\n| variant | centre crop | 10-crop |\n|---|---|---|");
    for (v, c, o) in super::paper::SURGERY.iter() {
        let _ = writeln!(s, "| {v} | {c:.3} | {o:.3} |");
    }
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```");
    s
}

/// `key ∈ {v1, v2}; …` for a search grid.
fn describe_grid(grid: &[crate::eval::search::SearchKey]) -> String {
    let keys: Vec<String> = grid.iter().map(|k| format!("{} ∈ {{{}}}", k.key, k.values.iter().map(crate::eval::search::value_text).collect::<Vec<_>>().join(", "))).collect();
    keys.join("; ")
}

impl<'a> VariantRow<'a> {
    /// The row of a finished run, `name` its folder's name: named after its
    /// preset when its surgery is one (with the folder's name beside it when
    /// that differs, so two runs of one preset stay apart), else `name`.
    pub fn of_run(name: &str, results: &'a CrossvalResults) -> VariantRow<'a> {
        let c = &results.config;
        let preset = crate::model::surgery::presets(&c.backbone).iter().find(|p| p.ops == c.recipe.surgery);
        let row_name = match preset {
            Some(p) if p.name == name => p.name.to_string(),
            Some(p) => format!("{} ({name})", p.name),
            None => name.to_string(),
        };
        VariantRow { name: row_name, paper: preset.and_then(|p| p.paper), results }
    }
}
