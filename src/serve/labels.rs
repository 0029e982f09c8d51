//! Class-name files: one name a line, optionally with a leading `background`
//! line (ImageNet label files often have 1,001 lines for 1,000 outputs).

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Reads class names for a network with `outputs` classes.
pub fn read(path: &Path, outputs: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading labels {}", path.display()))?;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if names.len() == outputs + 1 && names[0].eq_ignore_ascii_case("background") {
        names.remove(0);
    }
    if names.len() != outputs {
        bail!("{}: {} class names for a network with {outputs} outputs", path.display(), names.len());
    }
    Ok(names)
}
