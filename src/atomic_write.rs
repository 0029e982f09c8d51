//! Files that mark work as done (a fold's `result.json`, a probe's fold
//! file, a checkpoint) are written to a temporary file and renamed over the
//! target: a run stopped mid-write leaves the old file or none, never half
//! of one that a resumed run would take for finished work and fail to read.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` atomically and durably (a temporary file in
/// the same directory, synced, then renamed over `path`); the error names the file.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".partial-").tempfile_in(dir).map_err(named)?;
    file.write_all(contents.as_ref()).map_err(named)?;
    file.as_file().sync_all().map_err(named)?;
    file.persist(path).map_err(|e| named(e.error))?;
    Ok(())
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
    }
}
