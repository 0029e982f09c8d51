//! deepsent: visual sentiment prediction with fine-tuned CNNs, after Campos,
//! Salvador, Jou & Giró-i-Nieto, *Diving Deep into Sentiment* (2015).
//!
//! The pipeline, in the order data flows through it:
//!
//! ```text
//! data ──> preprocess ──> model ──> train ──> eval ──> experiment ──> report / serve
//! (folds,  (decode, warp,  (spec,    (recipe,  (cross-     (experiment   (tables, plots,
//!  checks)  crops, cache)  import,   solver,   validation,  files, the    HTTP)
//!                          surgery)  resume)   probes)      workbench)
//! ```
//! Each layer uses only those to its left (`scripts/check_layers.py`). A
//! recipe (`train::Recipe`) is data with the paper's defaults; command-line
//! flags and experiment files override it. An experiment file strings the
//! whole study together (`deepsent reproduce`). The command-line interface
//! (`src/cli`) is a thin layer over these modules.

pub mod atomic_write;
pub mod data;
pub mod download;
pub mod eval;
pub mod experiment;
pub mod locate;
pub mod model;
pub mod preprocess;
pub mod progress;
pub mod report;
pub mod serve;
pub mod train;
