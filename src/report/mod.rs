//! Reports: tables and plots of results.

pub mod paper;
pub mod confusion;
pub mod curves;
pub mod plot;
pub mod reproduction;
pub mod tables;

/// The current UTC time as an RFC 3339 string (for model cards and reports).
pub fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
