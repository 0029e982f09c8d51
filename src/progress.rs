//! Progress bars for long work (indicatif). They draw on a terminal only, so
//! logs of background runs stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar with a count, rate and ETA.
pub fn bar(len: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:<24} [{bar:32}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}
