//! Which image a label line names: a line's name is a path relative to some
//! folder above the image (the label file's, the image root's), so it names
//! the image whose path ends with it, whole components at a time. `1.jpg`
//! names `…/joy/1.jpg` only while no other image is called `1.jpg`;
//! `joy/1.jpg` names it among any number of `1.jpg`s. One matching rule for
//! every label file deepsent reads beside images (`evaluate`, `predict --truth`).

use super::label::Label;
use super::list_file::Entry;
use super::problem::Problem;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// The labels of `images` that `entries` (read from `file`) give: one per
/// image, `None` where no line names it. A line naming several images, an
/// image named by several lines, or (with `every_line`) a line naming no
/// image, is a problem at that line, listing what collided.
pub fn match_labels(file: &Path, entries: &[Entry], images: &[PathBuf], every_line: bool) -> (Vec<Option<Label>>, Vec<Problem>) {
    // Images by file name, then narrowed by the name's leading components.
    let mut by_file_name: HashMap<&std::ffi::OsStr, Vec<usize>> = HashMap::new();
    for (i, p) in images.iter().enumerate() {
        if let Some(n) = p.file_name() {
            by_file_name.entry(n).or_default().push(i);
        }
    }
    let mut labels = vec![None; images.len()];
    let mut named_by: Vec<Option<usize>> = vec![None; images.len()];
    let mut problems = Vec::new();
    for e in entries {
        let wanted = components(Path::new(&e.name));
        let found: Vec<usize> = match wanted.last().and_then(|last| by_file_name.get(last.as_os_str())) {
            Some(candidates) => candidates.iter().copied().filter(|&i| components(&images[i]).ends_with(&wanted)).collect(),
            None => Vec::new(),
        };
        match found[..] {
            [] if every_line => problems.push(Problem::at(file, e.line, format!("no image found for {:?}", e.name))),
            [] => {}
            [i] => {
                if let Some(first) = named_by[i] {
                    problems.push(Problem::at(file, e.line, format!("{:?} names the image {} that line {first} already names", e.name, images[i].display())));
                } else {
                    named_by[i] = Some(e.line);
                    labels[i] = Some(e.label);
                }
            }
            _ => {
                let list: Vec<String> = found.iter().map(|&i| images[i].display().to_string()).collect();
                problems.push(Problem::at(
                    file,
                    e.line,
                    format!("{:?} is ambiguous: it could be any of {} (give more of the path, e.g. the folder)", e.name, list.join(", ")),
                ));
            }
        }
    }
    (labels, problems)
}

/// A path's normal components (`./` and a leading `/` dropped), for comparing tails.
fn components(p: &Path) -> Vec<PathBuf> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(PathBuf::from(s)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::list_file;

    fn images(paths: &[&str]) -> Vec<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn names_with_spaces_sub_folders_and_unique_bare_names_match() {
        let (entries, problems) = list_file::parse(Path::new("l.txt"), "Acorns 1.jpg 1\njoy/1.jpg 1\nfear/1.jpg 0\nlone.png 0\n");
        assert!(problems.is_empty());
        let imgs = images(&["/d/x/Acorns 1.jpg", "/d/joy/1.jpg", "/d/fear/1.jpg", "/d/deep/er/lone.png", "/d/unlisted.jpg"]);
        let (labels, problems) = match_labels(Path::new("l.txt"), &entries, &imgs, true);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(labels, [Some(Label::Positive), Some(Label::Positive), Some(Label::Negative), Some(Label::Negative), None]);
    }

    #[test]
    fn an_ambiguous_name_lists_the_images_it_could_be() {
        let (entries, _) = list_file::parse(Path::new("l.txt"), "1.jpg 1\nsad/2.jpg 0\n");
        let imgs = images(&["/d/joy/1.jpg", "/d/fear/1.jpg", "/d/sad/2.jpg"]);
        let (labels, problems) = match_labels(Path::new("l.txt"), &entries, &imgs, true);
        assert_eq!(labels, [None, None, Some(Label::Negative)]);
        assert_eq!(problems.len(), 1);
        let text = problems[0].to_string();
        assert!(text.starts_with("l.txt:1: \"1.jpg\" is ambiguous"), "{text}");
        assert!(text.contains("/d/joy/1.jpg") && text.contains("/d/fear/1.jpg"), "{text}");
    }

    #[test]
    fn one_image_named_twice_and_a_line_naming_nothing_are_problems() {
        let (entries, _) = list_file::parse(Path::new("l.txt"), "joy/1.jpg 1\n1.jpg 0\nmissing.jpg 1\n");
        let imgs = images(&["/d/joy/1.jpg"]);
        let (_, problems) = match_labels(Path::new("l.txt"), &entries, &imgs, true);
        let lines: Vec<_> = problems.iter().map(|p| p.line.unwrap()).collect();
        assert_eq!(lines, [2, 3]);
        assert!(problems[0].message.contains("line 1 already names"), "{}", problems[0]);
        // predict --truth: a label file may list images that were not predicted.
        let (_, problems) = match_labels(Path::new("l.txt"), &entries, &imgs, false);
        assert_eq!(problems.len(), 1);
    }
}
