//! How a run records the weights it started from: the file's name and its
//! SHA-256, not where it lay on the machine that ran it. A run directory or
//! committed result then names the same weights on any machine, and a run
//! resumes only on the same bytes.

use std::path::{Path, PathBuf};

const MARK: &str = " sha256:";

/// `NAME sha256:HEX` of the weights file at `path`.
pub fn weights_id(path: &Path) -> std::io::Result<String> {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().to_string());
    Ok(format!("{name}{MARK}{}", super::fetch::hash_file::<sha2::Sha256>(path)?))
}

/// Whether `record` is an identity (older runs recorded a path).
pub fn is_id(record: &str) -> bool {
    record.contains(MARK)
}

/// A record in today's form: an older run's path becomes the identity of
/// the file there, when it still exists.
pub fn upgraded(record: &str) -> String {
    if is_id(record) {
        return record.to_string();
    }
    weights_id(Path::new(record)).unwrap_or_else(|_| record.to_string())
}

/// The weights file a record names: an older run's path as it is, else
/// `candidate` (the architecture's default weights, say) if it has the
/// recorded identity.
pub fn find(record: &str, candidate: Option<PathBuf>) -> Result<PathBuf, String> {
    if !is_id(record) {
        return Ok(PathBuf::from(record));
    }
    match candidate {
        Some(path) => match weights_id(&path) {
            Ok(id) if id == record => Ok(path),
            Ok(id) => Err(format!("{} is {id}, but the run was made with {record}", path.display())),
            Err(e) => Err(format!("{}: {e}", path.display())),
        },
        None => Err(format!("the run was made with {record}, and no candidate file was given")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_names_the_file_and_its_bytes_and_finds_only_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("w.net"), dir.path().join("other.net"));
        std::fs::write(&a, b"abc").unwrap();
        std::fs::write(&b, b"abd").unwrap();
        let id = weights_id(&a).unwrap();
        // SHA-256 of "abc", a published test vector.
        assert_eq!(id, "w.net sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(!id.contains(&dir.path().display().to_string()), "no machine path in the record");
        assert_eq!(upgraded(&a.display().to_string()), id, "an older run's path becomes its identity");
        assert_eq!(find(&id, Some(a.clone())).unwrap(), a);
        assert!(find(&id, Some(b)).unwrap_err().contains("the run was made with w.net"));
        assert!(find(&id, None).is_err());
    }
}
