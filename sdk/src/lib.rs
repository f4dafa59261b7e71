//! The boot SDK: everything a plugin author depends on.
//!
//! - the five component traits ([`NoiseSchedule`], [`Teacher`], [`Student`], [`Solver`], [`Guidance`])
//!   and their config traits, selected in `run.toml` by `kind = "..."` (typetag);
//! - the conditioning types ([`Cond`]);
//! - the plugin contract ([`plugin`]): one exported declaration, checked by the host before anything else;
//! - the kernels ([`ops`]): custom ops with hand-written backward passes, cuDNN convolutions, fused updates;
//! - the one shared copy of the engine: `candle`, `candle_nn`, `serde`, `typetag`, `inventory`, `tracing`,
//!   re-exported so that plugins and host use the same symbols (docs/architecture.md, "The shared-library guards").

pub use anyhow;
pub use candle_core as candle;
pub use candle_nn;
pub use half;
pub use inventory;
pub use rand;
pub use rand_chacha;
pub use rand_distr;
pub use safetensors;
pub use serde;
pub use serde_json;
pub use tracing;
pub use typetag;

pub mod io;
pub mod cond;
pub mod error;
pub mod guidance;
pub mod ops;
pub mod plugin;
pub mod rng;
pub mod schedule;
pub mod solver;
pub mod student;
pub mod teacher;
pub mod threshold;
pub mod times;

pub use cond::{Cond, CondSpec};
pub use error::InputError;
pub use guidance::{Guidance, GuidanceConfig};
pub use schedule::{BetaSchedule, NoiseSchedule, ScheduleConfig};
pub use solver::{Denoise, Solver, SolverConfig};
pub use student::{Student, StudentConfig, StudentContext};
pub use teacher::{ExactDensity, Teacher, TeacherConfig, TeacherContext};
pub use times::Times;

/// Result type used across the SDK.
pub type Result<T> = anyhow::Result<T>;
