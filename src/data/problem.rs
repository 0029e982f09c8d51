//! Problems found while reading a dataset: each names the file and, where it
//! applies, the line, so a user can go straight to it.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a dataset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number in `file`, when the problem is about one line.
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Problem { file: file.to_path_buf(), line: Some(line), message: message.into() }
    }

    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Problem { file: file.to_path_buf(), line: None, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every problem of a dataset, reported together (a user fixes them in one go
/// instead of one per run).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} problem{} in the dataset:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}
