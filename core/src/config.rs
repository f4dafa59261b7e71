//! The run config (`run.toml`): one section per concern, components selected by `kind = "..."`.

use std::path::PathBuf;

use boot_sdk::{GuidanceConfig, ScheduleConfig, SolverConfig, StudentConfig, TeacherConfig};
use serde::Deserialize;

use crate::boot::LossWeighting;
use crate::guidance::NoGuidanceConfig;
use crate::precision::Precision;
use crate::solvers::HeunConfig;

/// The whole run config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Output folder, seed, device, plugins.
    pub run: RunSection,
    /// Algorithm 1 and optimisation options.
    #[serde(default)]
    pub train: TrainSection,
    /// The teacher (`kind` from a plugin).
    pub teacher: Box<dyn TeacherConfig>,
    /// The student (`kind` from a plugin).
    pub student: Box<dyn StudentConfig>,
    /// The noise schedule; defaults to the teacher's own, else cosine.
    #[serde(default)]
    pub schedule: Option<Box<dyn ScheduleConfig>>,
    /// The target solver (default `heun`).
    #[serde(default = "default_solver")]
    pub solver: Box<dyn SolverConfig>,
    /// Guidance (default `none`).
    #[serde(default = "default_guidance")]
    pub guidance: Box<dyn GuidanceConfig>,
    /// Evaluation after training and by `boot-host eval`.
    #[serde(default)]
    pub eval: EvalSection,
}

fn default_solver() -> Box<dyn SolverConfig> {
    Box::new(HeunConfig {})
}

fn default_guidance() -> Box<dyn GuidanceConfig> {
    Box::new(NoGuidanceConfig { threshold: Default::default() })
}

/// `[run]`: where outputs go and what runs where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Output folder: checkpoints, metrics.jsonl, grids, eval.json (relative to the working directory).
    pub out_dir: PathBuf,
    /// Run seed; every random draw derives from it and the sample index.
    #[serde(default)]
    pub seed: u64,
    /// `cpu` or `cuda:N`.
    #[serde(default = "RunSection::default_device")]
    pub device: String,
    /// `f32`, or `bf16` (mixed precision: teacher in bf16, student bf16 compute over f32 master weights).
    #[serde(default)]
    pub dtype: Precision,
    /// Plugins to load: names (`analytic` finds `libboot_plugin_analytic.so`) or paths to libraries.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Extra folders to search for plugins (the binary's own folder is always searched).
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// CPU threads for tensor work (0: one per core). On small models and busy machines one thread can be
    /// faster than several.
    #[serde(default)]
    pub threads: usize,
}

impl RunSection {
    fn default_device() -> String {
        "cpu".into()
    }
}

/// `[train]`: Algorithm 1, optimiser, EMA and output cadence.
///
/// `micro_batch` (gradient accumulation): unset, a step runs its `batch_size` samples at once; set to `N`
/// (`1 <= N <= batch_size`), it runs them as `ceil(batch_size / N)` micro-batches of at most `N` samples, each
/// loss scaled by its share of the batch, their gradients summed, then one AdamW update (clipped as a whole),
/// one EMA update and one metrics row with the full batch's loss. Every sample keeps the noise, time,
/// condition and `w` of its index in the full batch, so the step equals the unaccumulated one (up to rounding).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Number of optimiser steps.
    pub steps: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// Gradient accumulation: compute a step in micro-batches of at most this many samples (`None`: the
    /// whole batch at once). Must lie in `1..=batch_size`.
    pub micro_batch: Option<usize>,
    /// Step size `delta`.
    pub delta: f64,
    /// Smallest target time.
    pub t_min: f64,
    /// Largest target time (boundary condition).
    pub t_max: f64,
    /// `uniform` or `inverse-step` (`1 / (delta lambda'_t)^2`).
    pub loss_weighting: LossWeighting,
    /// Boundary loss every k steps (0: never).
    pub boundary_every: u64,
    /// Boundary loss weight `beta`.
    pub boundary_weight: f64,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW `(beta1, beta2)`.
    pub adam_betas: [f64; 2],
    /// AdamW epsilon.
    pub adam_eps: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm (0: off).
    pub grad_clip: f64,
    /// EMA decay of the student's weights.
    pub ema_decay: f64,
    /// Write a checkpoint every N steps (and at the end).
    pub checkpoint_every: u64,
    /// Keep the last N checkpoints.
    pub keep_checkpoints: usize,
    /// Append to metrics.jsonl every N steps.
    pub log_every: u64,
    /// Write a PNG grid of student samples every N steps (0: only at the end).
    pub grid_every: u64,
    /// Images in a grid.
    pub grid_samples: usize,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Without a progress bar (stderr not a terminal, or `progress = false`): log a progress line (step,
    /// loss, steps/s, ETA) every N steps (0: never).
    pub progress_every: u64,
    /// Stop the run after this many non-finite losses in a row (each one's update is skipped; 0 acts as 1).
    pub max_nonfinite_in_a_row: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 64,
            micro_batch: None,
            delta: 0.04,
            t_min: 0.0,
            t_max: 0.99,
            loss_weighting: LossWeighting::Uniform,
            boundary_every: 4,
            boundary_weight: 1.0,
            lr: 1e-4,
            adam_betas: [0.9, 0.999],
            adam_eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: 0.0,
            ema_decay: 0.999,
            checkpoint_every: 500,
            keep_checkpoints: 3,
            log_every: 10,
            grid_every: 500,
            grid_samples: 16,
            progress: true,
            progress_every: 100,
            max_nonfinite_in_a_row: 5,
        }
    }
}

/// `[eval]`: metrics of teacher samplers and the student on the same noise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Number of samples per sampler.
    pub samples: usize,
    /// Batch size for sampling.
    pub batch_size: usize,
    /// Teacher DDIM step counts to evaluate.
    pub ddim_steps: Vec<usize>,
    /// DDIM steps of the reference ODE solution for `ode_mse`.
    pub reference_steps: usize,
    /// Evaluate the EMA student (else the live one).
    pub use_ema: bool,
    /// Run the evaluation at the end of training.
    pub after_training: bool,
    /// Reference statistics of a real dataset (`boot-host fd-stats`), relative to the config: adds `fd` and
    /// `fd_samples` per sampler to `eval.json`.
    pub fd_stats: Option<PathBuf>,
    /// The FD network's weights (relative to the config); default `~/.cache/boot/fd/efficientnet-lite0.safetensors`.
    pub fd_network: Option<PathBuf>,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self { samples: 256, batch_size: 128, ddim_steps: vec![1, 10, 50], reference_steps: 500, use_ema: true, after_training: true, fd_stats: None, fd_network: None }
    }
}
