//! Shared helpers of the unit tests.

use std::f64::consts::PI;
use std::path::PathBuf;

use boot_sdk::candle::{DType, Device};
use boot_sdk::{NoiseSchedule, TeacherContext};

/// The cosine schedule `alpha_t = cos(pi t / 2)`.
#[derive(Debug)]
pub struct Cosine;

impl NoiseSchedule for Cosine {
    fn alpha(&self, t: f64) -> f64 {
        (PI * t / 2.0).cos()
    }
}

/// A fresh, empty folder under the system temp folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A folder named after the process and `name`.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("boot-analytic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CPU teacher context with relative paths under `base_dir`.
pub fn teacher_ctx(base_dir: PathBuf) -> TeacherContext {
    TeacherContext { device: Device::Cpu, dtype: DType::F32, base_dir }
}
