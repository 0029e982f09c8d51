//! Files that mark work as done (a fold's `result.json`, a probe's fold
//! file, a checkpoint) are written to a temporary file and renamed over the
//! target: a run stopped mid-write leaves the old file or none, never half
//! of one that a resumed run would take for finished work and fail to read.

use std::path::{Path, PathBuf};

/// Writes `contents` to `path` atomically; the error names the file.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let partial = partial_path(path);
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    std::fs::write(&partial, contents).map_err(named)?;
    std::fs::rename(&partial, path).map_err(named)
}

/// `name.ext.partial` beside `name.ext` (appended, so `a.json` and `a.md` never share one).
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.json");
        write(&path, "old").unwrap();
        write(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["result.json"]);
    }

    #[test]
    fn a_failed_write_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir/result.json");
        let e = write(&path, "x").unwrap_err();
        assert!(e.to_string().contains("missing-dir/result.json"), "{e}");
        assert_eq!(partial_path(&dir.path().join("a.json")), dir.path().join("a.json.partial"));
    }
}
