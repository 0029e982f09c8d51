//! The list-file format shared by the Twitter label files, fold files and
//! users' label files: one image a line, `<name> <0|1>`, the label the last
//! whitespace-separated field and the name everything before it (so a name
//! may contain spaces: `Acorns 1.jpg 1`, or be a relative path: `joy/1.jpg 1`).

use super::label::Label;
use super::problem::Problem;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// One line of a list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub label: Label,
    /// 1-based line number, for error messages.
    pub line: usize,
}

/// Parses list-file text. Every bad line becomes a [`Problem`] (garbled line,
/// label other than 0/1, duplicate entry) and is left out of the entries;
/// blank lines carry no data and are skipped.
pub fn parse(file: &Path, text: &str) -> (Vec<Entry>, Vec<Problem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    // A byte-order mark (Windows editors write one) is not part of the first name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim_end_matches('\r');
        if content.trim().is_empty() {
            continue;
        }
        let content = content.trim();
        let Some((name, label)) = content.rsplit_once(char::is_whitespace).map(|(n, l)| (n.trim_end(), l)) else {
            problems.push(Problem::at(
                file,
                line,
                format!("garbled line {content:?}: expected `<file name> <0|1>`"),
            ));
            continue;
        };
        let label = match Label::parse_of(label, name) {
            Ok(label) => label,
            Err(message) => {
                problems.push(Problem::at(file, line, message));
                continue;
            }
        };
        if let Some(first) = first_line_of.get(name) {
            problems.push(Problem::at(
                file,
                line,
                format!("duplicate entry {name} (first at line {first})"),
            ));
            continue;
        }
        first_line_of.insert(name.to_string(), line);
        entries.push(Entry { name: name.to_string(), label, line });
    }
    (entries, problems)
}

/// Reads and parses a list file; an unreadable file is one problem.
pub fn read(file: &Path) -> (Vec<Entry>, Vec<Problem>) {
    match std::fs::read_to_string(file) {
        Ok(text) => parse(file, &text),
        Err(e) => (Vec::new(), vec![Problem::file(file, format!("cannot read: {e}"))]),
    }
}

/// Writes entries in the list-file format (LF endings), the inverse of [`parse`].
pub fn format<'a>(entries: impl IntoIterator<Item = (&'a str, Label)>) -> String {
    let mut out = String::new();
    for (name, label) in entries {
        let _ = writeln!(out, "{name} {}", label.index());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = "a.jpg 1\nb.jpg 2\ngarbage\n\nc.jpg 0\na.jpg 0\nd.jpg 1 extra\nAcorns 1.jpg\t 1\n  joy/1.jpg 0  \n";
        let (entries, problems) = parse(Path::new("x.txt"), text);
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a.jpg", "c.jpg", "Acorns 1.jpg", "joy/1.jpg"]);
        let lines: Vec<_> = problems.iter().map(|p| p.line.unwrap()).collect();
        assert_eq!(lines, [2, 3, 6, 7]);
        assert!(problems[0].to_string().starts_with("x.txt:2: label \"2\""));
        assert!(problems[2].message.contains("duplicate entry a.jpg (first at line 1)"));
    }

    #[test]
    fn format_round_trips() {
        let text = format([("a.jpg", Label::Positive), ("b.jpg", Label::Negative)]);
        assert_eq!(text, "a.jpg 1\nb.jpg 0\n");
        let (entries, problems) = parse(Path::new("x"), &text);
        assert!(problems.is_empty());
        assert_eq!(entries[1].label, Label::Negative);
    }
}
