//! The progress bar on stderr: shown only on a terminal and without `-q`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Verbosity;

/// A bar of `total` units (input pixels), hidden when stderr is not a terminal or with `-q`.
pub fn bar(total: u64, verbosity: Verbosity) -> ProgressBar {
    if verbosity == Verbosity::Quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{bar:30}] {percent:>3}% eta {eta} {wide_msg}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

/// A spinner counting frames (raw mode), with the same visibility rules.
pub fn spinner(verbosity: Verbosity) -> ProgressBar {
    if verbosity == Verbosity::Quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} frames ({per_sec})")
    {
        pb.set_style(style);
    }
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

/// Prints a line on stderr without tearing the bar; a closed or full stderr is ignored.
pub fn say(pb: &ProgressBar, line: &str) {
    pb.suspend(|| note!("{line}"));
}

/// A frame pipe's progress (`--raw`, `--y4m`): the [`spinner`], the frames written, the time
/// since the start, and the summary line with `-v`.
pub struct FrameCount {
    pb: ProgressBar,
    start: std::time::Instant,
    verbosity: Verbosity,
    /// Frames written so far.
    pub frames: u64,
}

impl FrameCount {
    /// Starts counting (and the spinner).
    pub fn start(verbosity: Verbosity) -> FrameCount {
        FrameCount {
            pb: spinner(verbosity),
            start: std::time::Instant::now(),
            verbosity,
            frames: 0,
        }
    }

    /// One more frame written.
    pub fn inc(&mut self) {
        self.frames += 1;
        self.pb.inc(1);
    }

    /// Clears the spinner; with `-v`, prints `MODE: N frames in S s`.
    pub fn finish(self, mode: &str) {
        self.pb.finish_and_clear();
        if self.verbosity >= Verbosity::Verbose {
            let secs = self.start.elapsed().as_secs_f64();
            say(
                &self.pb,
                &format!("{mode}: {} frames in {secs:.1} s", self.frames),
            );
        }
    }
}
