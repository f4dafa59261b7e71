//! The generic BOOT loop and its built-ins.
//!
//! - [`boot`]: Algorithm 1, the loss of one step, in one place;
//! - [`train`]: the loop around it (AdamW, EMA, checkpoints, metrics log, grids; [`progress`]);
//! - [`schedules`], [`solvers`], [`guidance`]: built-in components, selected by `kind = "..."`;
//! - [`samplers`]: the teacher's DDIM-N and signal-ODE-N, and the one-step student;
//! - [`precision`]: `run.dtype`, the mixed-precision wrappers;
//! - [`eval`], [`metrics`]: `eval.json`.

pub mod boot;
pub mod checkpoint;
pub mod components;
pub mod config;
pub mod device;
pub mod ema;
pub mod eval;
pub mod generate;
pub mod grid;
pub mod guidance;
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

/// Names the built-in components, so `boot-host plugins` lists them beside plugin-provided ones.
fn register_builtins(r: &mut boot_sdk::plugin::Registrar) {
    r.schedule("cosine", "alpha = cos(pi t / 2), sigma = sin(pi t / 2)")
        .schedule("linear", "DDPM linear betas, continuous through lambda")
        .schedule("scaled-linear", "Stable Diffusion scaled-linear betas, continuous through lambda")
        .schedule("edm", "EDM's rho-spaced sigmas mapped to VP")
        .solver("euler", "one DDIM step in signal space (Eq. 4)")
        .solver("heun", "Heun's method on the signal ODE (Eq. 15)")
        .guidance("none", "the teacher's conditional prediction, optionally thresholded")
        .guidance("cfg", "classifier-free guidance, fixed w or per-sample w in [w_min, w_max]");
}

boot_sdk::inventory::submit! {
    boot_sdk::plugin::Builtin { register: register_builtins }
}
