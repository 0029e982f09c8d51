//! Markdown tables of results, with the paper's numbers beside ours.

use crate::eval::crossval::CrossvalResults;
use std::fmt::Write;

/// The paper's Table 1 row for the fine-tuned CaffeNet (Campos et al. 2015):
/// mean ± std accuracy, centre crop and with 10-crop oversampling.
pub const PAPER_FINETUNED: ((f64, f64), (f64, f64)) = ((0.817, 0.038), (0.830, 0.034));

/// Table 1: per fold and mean ± std, centre and 10-crop, with the paper's row.
pub fn crossval_table(r: &CrossvalResults, command: &str) -> String {
    let mut s = String::new();
    let c = &r.config;
    let _ = writeln!(s, "# Fine-tuning by {}-fold cross-validation: {}\n", r.folds.len(), c.backbone);
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
    let ((pc, pcs), (po, pos)) = PAPER_FINETUNED;
    let _ = writeln!(s, "| paper (CaffeNet, fine-tuned) | | {pc:.3} ± {pcs:.3} | {po:.3} ± {pos:.3} | |");
    let _ = writeln!(s, "\nStandard deviation: {}. Solver: base lr {}, momentum {}, weight decay {}, ×{} every {} epochs, {} epochs, batch {} (micro-batches of {}), new layers' lr ×{}.", r.std_kind, c.solver.base_lr, c.solver.momentum, c.solver.weight_decay, c.solver.gamma, c.solver.step_epochs, c.solver.epochs, c.solver.batch, c.solver.micro_batch, c.new_lr_mult);
    if !r.degenerate_folds.is_empty() {
        let _ = writeln!(s, "\nDegenerate folds (tied or constant answers; their accuracy means nothing): {:?}.", r.degenerate_folds);
    }
    let _ = writeln!(s, "\nCommand:\n\n```sh\n{command}\n```");
    s
}
