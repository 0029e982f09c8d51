//! Progress bars for long work (indicatif). They draw on a terminal only, so
//! logs of background runs stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar with a count, rate and ETA.
pub fn bar(len: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:<24} [{bar:32}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

/// Seconds between progress lines when stderr is not a terminal
/// (`$DEEPSENT_PROGRESS_SECS`, default 30).
pub const PROGRESS_SECS_ENV: &str = "DEEPSENT_PROGRESS_SECS";

/// A bar on a terminal; elsewhere (a log file, a pipe) the same text as a
/// line every `$DEEPSENT_PROGRESS_SECS` seconds, so that long work run in
/// the background still says where it is and how fast it goes.
pub fn bar_or_lines(len: u64, message: &str) -> ProgressBar {
    use std::io::IsTerminal;
    let bar = bar(len, message);
    if !std::io::stderr().is_terminal() {
        let every = std::env::var(PROGRESS_SECS_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(30.0f64);
        let lines = LogLines::new(std::time::Duration::from_secs_f64(every.max(0.0)), Box::new(std::io::stderr()));
        bar.set_draw_target(indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(lines), 1));
    }
    bar
}

/// A "terminal" that prints each drawn bar as a plain line, at most one per
/// `every`: indicatif hides bars off a terminal, and redrawing in place
/// means nothing in a log.
struct LogLines {
    every: std::time::Duration,
    last: std::sync::Mutex<Option<std::time::Instant>>,
    out: std::sync::Mutex<Box<dyn std::io::Write + Send>>,
}

impl LogLines {
    fn new(every: std::time::Duration, out: Box<dyn std::io::Write + Send>) -> Self {
        LogLines { every, last: std::sync::Mutex::new(None), out: std::sync::Mutex::new(out) }
    }
}

impl std::fmt::Debug for LogLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogLines every {:?}", self.every)
    }
}

impl indicatif::TermLike for LogLines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let line = s.trim();
        let mut last = self.last.lock().expect("not poisoned");
        if line.is_empty() || last.is_some_and(|t| t.elapsed() < self.every) {
            return Ok(());
        }
        *last = Some(std::time::Instant::now());
        writeln!(self.out.lock().expect("not poisoned"), "{line}")
    }
    /// indicatif writes a bar's last line without its newline: a line here too.
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.write_line(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        self.out.lock().expect("not poisoned").flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_printed_at_most_once_per_interval() {
        let out = Shared::default();
        let every = LogLines::new(std::time::Duration::ZERO, Box::new(out.clone()));
        every.write_line("evaluating [==>  ] 1/3").unwrap();
        every.write_line("  ").unwrap();
        every.write_line("evaluating [====>] 2/3").unwrap();
        assert_eq!(String::from_utf8(out.0.lock().unwrap().clone()).unwrap(), "evaluating [==>  ] 1/3\nevaluating [====>] 2/3\n");
        let out = Shared::default();
        let hourly = LogLines::new(std::time::Duration::from_secs(3600), Box::new(out.clone()));
        for i in 0..5 {
            hourly.write_line(&format!("step {i}")).unwrap();
        }
        assert_eq!(String::from_utf8(out.0.lock().unwrap().clone()).unwrap(), "step 0\n");
    }
}
