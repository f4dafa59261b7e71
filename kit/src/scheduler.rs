//! `scheduler/scheduler_config.json` of a diffusers pipeline: the training schedule and prediction target.
//!
//! Read: `num_train_timesteps`, `beta_schedule` (`linear`, `scaled_linear`, `squaredcos_cap_v2`),
//! `beta_start`, `beta_end`, `trained_betas` (explicit betas win), `prediction_type` (`epsilon`,
//! `v_prediction`, `sample`), `variance_type` (a `learned*` type: the network's extra output channels are
//! the variance and are split off). Refused: `rescale_betas_zero_snr = true` (an infinite final noise level).
//! Sampling-time settings (`clip_sample`, `thresholding`, `timestep_spacing`, `steps_offset`,
//! `set_alpha_to_one`, ...) do not change the teacher's prediction and are not read; boot's own samplers and
//! `[guidance] threshold` take their place.

use std::path::Path;

use crate::Prediction;
use boot_sdk::{BetaSchedule, InputError};
use serde::Deserialize;

/// Keys of diffusers' DDPM/DDIM scheduler configs that only matter when sampling with diffusers itself.
const SAMPLING_KEYS: &[&str] = &[
    "clip_sample",
    "clip_sample_range",
    "thresholding",
    "dynamic_thresholding_ratio",
    "sample_max_value",
    "timestep_spacing",
    "steps_offset",
    "set_alpha_to_one",
    "skip_prk_steps",
    "eta",
];

/// `beta_schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaScheduleKind {
    /// Betas linear from `beta_start` to `beta_end`.
    Linear,
    /// Linear in `sqrt(beta)` (Stable Diffusion).
    ScaledLinear,
    /// The cosine schedule of Nichol & Dhariwal.
    SquaredcosCapV2,
}

/// `prediction_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    /// The noise.
    Epsilon,
    /// The velocity `alpha eps - sigma x0`.
    VPrediction,
    /// The signal.
    Sample,
}

impl From<PredictionType> for Prediction {
    fn from(p: PredictionType) -> Self {
        match p {
            PredictionType::Epsilon => Prediction::Eps,
            PredictionType::VPrediction => Prediction::V,
            PredictionType::Sample => Prediction::X0,
        }
    }
}

/// The schedule part of a diffusers scheduler config.
#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerConfig {
    /// Training timesteps `N`.
    #[serde(default = "default_timesteps")]
    pub num_train_timesteps: usize,
    /// `linear`, `scaled_linear` or `squaredcos_cap_v2`.
    #[serde(default = "default_beta_schedule")]
    pub beta_schedule: BetaScheduleKind,
    /// First beta of the linear schedules.
    #[serde(default = "default_beta_start")]
    pub beta_start: f64,
    /// Last beta of the linear schedules.
    #[serde(default = "default_beta_end")]
    pub beta_end: f64,
    /// Explicit betas, one per training timestep.
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
    /// `epsilon`, `v_prediction` or `sample`.
    #[serde(default = "default_prediction")]
    pub prediction_type: PredictionType,
    /// `fixed_small`, `learned_range`, ...: `learned*` means the network outputs a variance too.
    #[serde(default)]
    pub variance_type: Option<String>,
    /// Must be false (true rescales to a zero terminal SNR, an infinite noise level).
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
}

fn default_timesteps() -> usize {
    1000
}
fn default_beta_schedule() -> BetaScheduleKind {
    BetaScheduleKind::Linear
}
fn default_beta_start() -> f64 {
    0.0001
}
fn default_beta_end() -> f64 {
    0.02
}
fn default_prediction() -> PredictionType {
    PredictionType::Epsilon
}

impl SchedulerConfig {
    /// Reads `path` (upstream JSON: bad values name the file and key; unknown keys are warned about once).
    pub fn read(path: &Path) -> boot_sdk::Result<Self> {
        let cfg: Self = boot_models::config::read_json(path, SAMPLING_KEYS)?;
        cfg.check(&path.display().to_string())?;
        Ok(cfg)
    }

    fn check(&self, source: &str) -> boot_sdk::Result<()> {
        if self.rescale_betas_zero_snr {
            let msg = "true is not supported: a zero terminal SNR has no finite noise level at the last timestep";
            return Err(InputError::new(source, "rescale_betas_zero_snr", msg).into());
        }
        Ok(())
    }

    /// The prediction target.
    pub fn prediction(&self) -> Prediction {
        self.prediction_type.into()
    }

    /// Whether the network's output carries a learned variance after the prediction.
    pub fn learned_variance(&self) -> bool {
        self.variance_type.as_deref().is_some_and(|v| v.starts_with("learned"))
    }

    /// The training schedule; errors name `source` and the key.
    pub fn beta_schedule(&self, source: &str) -> boot_sdk::Result<BetaSchedule> {
        let n = self.num_train_timesteps;
        let bad = |key: &str, e: anyhow::Error| -> boot_sdk::anyhow::Error { InputError::new(source, key, e.to_string()).into() };
        if let Some(betas) = &self.trained_betas {
            if betas.len() != n {
                return Err(InputError::new(source, "trained_betas", format!("{} betas for num_train_timesteps = {n}", betas.len())).into());
            }
            return BetaSchedule::from_betas(betas.clone()).map_err(|e| bad("trained_betas", e));
        }
        match self.beta_schedule {
            BetaScheduleKind::Linear => BetaSchedule::linear(n, self.beta_start, self.beta_end),
            BetaScheduleKind::ScaledLinear => BetaSchedule::scaled_linear(n, self.beta_start, self.beta_end),
            BetaScheduleKind::SquaredcosCapV2 => BetaSchedule::cosine(n),
        }
        .map_err(|e| bad("beta_schedule", e))
    }
}
