//! ImageNet plugin: class-conditional teachers of the ADM family (Dhariwal & Nichol's guided-diffusion
//! `UNetModel`) as a boot teacher (`kind = "adm"`), and a BOOT student initialised from the teacher
//! (`kind = "adm-student"`).
//!
//! - openai's released checkpoints (`64x64_diffusion.pt`: eps prediction, learned variance, cosine
//!   schedule) load as published, from the PyTorch `.pt` state dict (candle's pickle reader) or from
//!   `.safetensors` with the same keys; the teacher uses the first `C` output channels.
//! - ADM checkpoints trained for signal (x0) prediction with label dropout (BOOT's own ImageNet teacher)
//!   set `prediction = "x0"` and `null_class = "extra-row"`.
//!
//! The network is [`boot_models::adm::UNetModel`], checked against the official code's outputs
//! (`models/tests/adm_parity.rs`); its schedule is [`boot_sdk::BetaSchedule`], which the
//! teacher offers as the run's native schedule.

pub mod checkpoint;
pub mod config;
pub mod denoiser;
pub mod student;
pub mod teacher;

pub use config::{AdmTeacherConfig, LabelMode, Labels, NoiseScheduleKind, NullClass, Prediction};
pub use denoiser::AdmDenoiser;
pub use student::{AdmBackbone, AdmStudent, AdmStudentConfig};
pub use teacher::AdmTeacher;

boot_sdk::declare_plugin!("imagenet");
