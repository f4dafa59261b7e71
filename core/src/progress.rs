//! Training progress: a progress bar on a terminal, else a log line (step, loss, steps/s, ETA) every N
//! steps through `tracing`, so long runs under a scheduler or `nohup` still say how far they are.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Reports a run's progress from step `start` to `steps`.
pub struct Progress {
    bar: indicatif::ProgressBar,
    /// Log every N steps (0: never); only without a bar.
    every: u64,
    start: u64,
    steps: u64,
    began: Instant,
}

impl Progress {
    /// A bar when `bar` is asked for and stderr is a terminal, else log lines every `every` steps.
    pub fn new(bar: bool, every: u64, start: u64, steps: u64) -> Self {
        let shown = bar && std::io::stderr().is_terminal();
        let bar = if shown { progress_bar(start, steps) } else { indicatif::ProgressBar::hidden() };
        Self { bar, every: if shown { 0 } else { every }, start, steps, began: Instant::now() }
    }

    /// Records that step `done` (1-based) finished with `loss`.
    pub fn update(&self, done: u64, loss: f32) {
        self.bar.set_position(done);
        self.bar.set_message(format!("loss {loss:.4e}"));
        if self.every > 0 && (done % self.every == 0 || done == self.steps) {
            let elapsed = self.began.elapsed().as_secs_f64();
            let rate = (done - self.start) as f64 / elapsed.max(1e-9);
            let eta = format_duration(Duration::from_secs_f64((self.steps - done) as f64 / rate.max(1e-9)));
            tracing::info!(step = done, of = self.steps, loss, steps_per_s = %format!("{rate:.3}"), eta = %eta, "progress");
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn progress_bar(start: u64, steps: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(steps);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec} eta {eta} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_position(start);
    bar
}

/// `1h02m03s`, `4m05s` or `6s`.
fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}
