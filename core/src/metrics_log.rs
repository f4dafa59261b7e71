//! `metrics.jsonl`: one JSON object per logged training step.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use boot_sdk::serde_json::Value;

/// Appends JSON lines to a run's metrics log.
pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    /// The log of the run in `out_dir`.
    pub fn new(out_dir: &Path) -> Self {
        Self { path: out_dir.join("metrics.jsonl") }
    }

    /// Keeps only the lines of steps `<= step` (a resumed run continues from its checkpoint), atomically.
    pub fn truncate_after(&self, step: u64) -> boot_sdk::Result<()> {
        let Ok(text) = std::fs::read_to_string(&self.path) else { return Ok(()) };
        let kept: String = text
            .lines()
            .filter(|l| boot_sdk::serde_json::from_str::<Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s <= step))
            .map(|l| format!("{l}\n"))
            .collect();
        boot_sdk::io::write_atomic(&self.path, kept.as_bytes())
    }

    /// The value of `key` in the last record, if the log exists and that record has it as an integer.
    pub fn last_u64(&self, key: &str) -> boot_sdk::Result<Option<u64>> {
        let Ok(text) = std::fs::read_to_string(&self.path) else { return Ok(None) };
        let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else { return Ok(None) };
        Ok(boot_sdk::serde_json::from_str::<Value>(last)?[key].as_u64())
    }

    /// Appends one record.
    pub fn append(&self, record: &Value) -> boot_sdk::Result<()> {
        let mut f = OpenOptions::new().create(true).append(true).open(&self.path)?;
        writeln!(f, "{record}")?;
        Ok(())
    }
}
