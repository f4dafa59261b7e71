//! No guidance: `f~ = f(x, t, c)`, then optional thresholding.

use boot_sdk::candle::Tensor;
use boot_sdk::threshold::Threshold;
use boot_sdk::{Cond, Guidance, GuidanceConfig, Teacher, Times};
use serde::Deserialize;

/// The teacher's own (conditional) prediction, thresholded.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGuidance {
    /// Post-processing of the prediction.
    pub threshold: Threshold,
}

impl Guidance for NoGuidance {
    fn sample_w(&self, _seeds: &[u64]) -> Option<Vec<f64>> {
        None
    }
    fn w_conditioned(&self) -> bool {
        false
    }
    fn denoise(&self, teacher: &dyn Teacher, x: &Tensor, times: &Times, cond: &Cond, _w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        self.threshold.apply(&teacher.denoise(x, times, cond)?)
    }
}

/// `[guidance] kind = "none"`, with optional `threshold = { kind = "clip" }` or
/// `threshold = { kind = "dynamic", percentile = 0.995 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoGuidanceConfig {
    /// Post-processing of the prediction (default none).
    #[serde(default)]
    pub threshold: Threshold,
}

boot_sdk::register! {
    guidance "none" => "the teacher's conditional prediction, optionally thresholded";
    impl GuidanceConfig for NoGuidanceConfig {
        fn build(&self) -> boot_sdk::Result<Box<dyn Guidance>> {
            Ok(Box::new(NoGuidance { threshold: self.threshold }))
        }
    }
}
