//! The two sentiment classes and how list files spell them.

use serde::{Deserialize, Serialize};

/// Sentiment label. The numeric value is the class index used by the networks
/// (output 0 = negative, output 1 = positive), as in the Twitter label files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Negative = 0,
    Positive = 1,
}

impl Label {
    pub const ALL: [Label; 2] = [Label::Negative, Label::Positive];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses the label column of a list file: exactly `0` or `1`.
    pub fn parse(text: &str) -> Option<Label> {
        match text {
            "0" => Some(Label::Negative),
            "1" => Some(Label::Positive),
            _ => None,
        }
    }

    /// `parse`, with the message a list file's problem gives for `name`'s bad label.
    pub fn parse_of(text: &str, name: &str) -> Result<Label, String> {
        Label::parse(text).ok_or_else(|| format!("label {text:?} of {name} is not 0 (negative) or 1 (positive)"))
    }

    pub fn name(self) -> &'static str {
        match self {
            Label::Negative => "negative",
            Label::Positive => "positive",
        }
    }
}
