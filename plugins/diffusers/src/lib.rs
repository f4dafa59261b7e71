//! diffusers plugin: a pixel-space diffusers pipeline folder (what `DDPMPipeline.save_pretrained` and the
//! diffusers training scripts write, and the public DDPM checkpoints: CIFAR-10, CelebA-HQ, LSUN) as a boot
//! teacher (`kind = "diffusers"`), and a BOOT student initialised from it (`kind = "diffusers-student"`).
//!
//! The network is [`boot_models::diffusers::UNet2DModel`] (parity with diffusers in
//! `models/tests/diffusers_parity.rs`); time, prediction target and learned variance go through the plugin
//! kit's discrete-time denoiser (`kit/src/discrete.rs`); the schedule comes from the folder's
//! `scheduler/scheduler_config.json` (the kit's `kit/src/scheduler.rs`).

pub mod student;
pub mod teacher;

pub use student::{DiffusersBackbone, DiffusersStudent, DiffusersStudentConfig};
pub use teacher::{DiffusersTeacher, DiffusersTeacherConfig};

boot_sdk::declare_plugin!("diffusers");
