//! Bring-your-own-data layouts: a folder per class, a CSV `path,label`, or a
//! label file of `name label` lines beside the images.
//!
//! ```text
//! ROOT/positive/**/*.jpg      ROOT/negative/**/*.png     (folder per class)
//! FILE.csv: path,label        (header optional, paths relative to the CSV)
//! FILE.txt: name 0|1          (names matched to the images under FILE's folder, see label_match)
//! ```
//!
//! Items are named by their path relative to the root, which is also how the
//! fold files written by [`super::split`] name them.

use super::dataset::Item;
use super::label::Label;
use super::problem::Problem;
use super::image_files::{is_image_path, ImageKind};
use std::path::Path;

/// Lists `ROOT/positive` and `ROOT/negative` recursively, sorted by name so
/// the order (and so a seeded split) does not depend on the file system.
pub fn load_folders(root: &Path, problems: &mut Vec<Problem>) -> Vec<Item> {
    let mut items = Vec::new();
    for label in [Label::Positive, Label::Negative] {
        let dir = root.join(label.name());
        if !dir.is_dir() {
            problems.push(Problem::file(&dir, format!("missing the {} class folder", label.name())));
            continue;
        }
        let mut found = 0;
        for entry in super::image_files::walk(&dir) {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    problems.push(Problem::file(&dir, format!("cannot list: {e}")));
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            match is_image_path(path) {
                ImageKind::Supported => {
                    let name = relative_name(root, path);
                    items.push(Item { name, path: path.to_path_buf(), label });
                    found += 1;
                }
                ImageKind::Unsupported(fmt) => problems.push(Problem::file(
                    path,
                    format!("{fmt} images are not supported (use JPEG, PNG or BMP)"),
                )),
                ImageKind::NotImage => {}
            }
        }
        if found == 0 && dir.is_dir() {
            problems.push(Problem::file(&dir, "class folder has no images"));
        }
    }
    items
}

/// Reads a CSV of `path,label` rows (an optional `path,label` header).
pub fn load_csv(file: &Path, problems: &mut Vec<Problem>) -> Vec<Item> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut reader = match csv::ReaderBuilder::new().has_headers(false).flexible(true).from_path(file) {
        Ok(r) => r,
        Err(e) => {
            problems.push(Problem::file(file, format!("cannot read: {e}")));
            return Vec::new();
        }
    };
    let mut items: Vec<Item> = Vec::new();
    let mut first_line_of = std::collections::HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(i + 1);
                problems.push(Problem::at(file, line, format!("garbled CSV: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize).unwrap_or(i + 1);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if i == 0 && record.get(0).map(str::trim) == Some("path") {
            continue; // header
        }
        if record.len() != 2 {
            problems.push(Problem::at(
                file,
                line,
                format!("garbled line: {} fields, expected `path,label`", record.len()),
            ));
            continue;
        }
        let (name, label) = (record[0].trim(), record[1].trim());
        let label = match Label::parse_of(label, name) {
            Ok(label) => label,
            Err(message) => {
                problems.push(Problem::at(file, line, message));
                continue;
            }
        };
        if let Some(first) = first_line_of.insert(name.to_string(), line) {
            problems.push(Problem::at(file, line, format!("duplicate entry {name} (first at line {first})")));
            continue;
        }
        let path = base.join(name);
        if !path.is_file() {
            problems.push(Problem::at(file, line, format!("image {name} not found at {}", path.display())));
        }
        items.push(Item { name: name.to_string(), path, label });
    }
    items
}

/// Reads a label file of `name 0|1` lines ([`super::list_file`]) and finds
/// each line's image under the file's folder ([`super::label_match`]): every
/// line must name exactly one image.
pub fn load_label_file(file: &Path, problems: &mut Vec<Problem>) -> Vec<Item> {
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (entries, mut found) = super::list_file::read(file);
    problems.append(&mut found);
    let mut images = Vec::new();
    for entry in super::image_files::walk(base) {
        match entry {
            Ok(e) if e.file_type().is_file() && is_image_path(e.path()) != ImageKind::NotImage => images.push(e.into_path()),
            Ok(_) => {}
            Err(e) => problems.push(Problem::file(base, format!("cannot list: {e}"))),
        }
    }
    let (labels, mut found) = super::label_match::match_labels(file, &entries, &images, true);
    problems.append(&mut found);
    images
        .into_iter()
        .zip(labels)
        .filter_map(|(path, label)| Some(Item { name: relative_name(base, &path), label: label?, path }))
        .collect()
}

fn relative_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
