//! The `analytic` plugin: a teacher whose data distribution is a Gaussian mixture, so its denoiser, density
//! and modes are exact (ground truth for every test of the BOOT loop), and `analytic-unet`, a small UNet
//! student trained from scratch.
//!
//! - [`mixture`]: the mixture (built-in procedural images or a safetensors file) and its exact formulas;
//! - [`teacher`]: `[teacher] kind = "analytic"`;
//! - [`student`]: `[student] kind = "analytic-unet"`.

mod blocks;
mod conv;
mod cpu;
pub mod mixture;
mod norm;
mod patterns;
pub mod student;
pub mod teacher;
#[cfg(test)]
mod testing;

pub use mixture::Mixture;
pub use student::{AnalyticUnet, AnalyticUnetConfig};
pub use teacher::{AnalyticTeacher, AnalyticTeacherConfig};

boot_sdk::declare_plugin!("analytic");
