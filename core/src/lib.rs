//! The generic BOOT loop and its built-ins.
//!
//! - [`boot`]: Algorithm 1, the loss of one step, in one place;
//! - [`train`]: the loop around it (AdamW, EMA, checkpoints, metrics log, grids; [`progress`]);
//! - [`schedules`], [`solvers`], [`guidance`]: built-in components, selected by `kind = "..."`;
//! - [`samplers`]: the teacher's DDIM-N and signal-ODE-N, and the one-step student;
//! - [`precision`]: `run.dtype`, the mixed-precision wrappers;
//! - [`eval`], [`metrics`]: `eval.json`;
//! - [`fd`], [`gaussian_fd`], [`image_data`]: the Fréchet distance to a real dataset (features, Gaussian fit, image files).

pub mod boot;
pub mod checkpoint;
pub mod components;
pub mod config;
pub mod device;
pub mod ema;
pub mod eval;
pub mod fd;
pub mod gaussian_fd;
pub mod generate;
pub mod grid;
pub mod guidance;
pub mod image_data;
pub mod metrics;
pub mod metrics_log;
pub mod optim;
pub mod precision;
pub mod progress;
pub mod samplers;
pub mod schedules;
pub mod seeded_init;
pub mod solvers;
pub mod train;
