//! EDM plugin: NVIDIA's EDM networks (`SongUNet` for DDPM++/NCSN++, `DhariwalUNet` for ADM) and
//! preconditioners (`EDMPrecond`, `VPPrecond`, `VEPrecond`) as a boot teacher (`kind = "edm"`), EDM's Heun
//! sampler, and a BOOT student initialised from the teacher (`kind = "edm-student"`).
//!
//! Checkpoints: NVIDIA's `network-snapshot-*.pkl` files hold pickled Python objects; convert them once with
//! `scripts/convert_edm_pkl.py` into a `.safetensors` state dict plus a `.json` description
//! (see [`config`]). The layers come from [`boot_sdk::nn`]; the networks reproduce the official float32
//! computation (parity tests against reference outputs in `tests/`).

pub mod config;
pub mod denoiser;
pub mod dhariwal_unet;
pub mod network;
pub mod precond;
pub mod sampler;
pub mod song_unet;
pub mod student;
pub mod teacher;

pub use config::{ArchConfig, DhariwalUNetConfig, NetworkSpec, PrecondConfig, SongUNetConfig};
pub use denoiser::EdmDenoiser;
pub use network::EdmNetwork;
pub use precond::Precond;
pub use sampler::{edm_sampler, edm_time_steps, HeunConfig};
pub use student::{EdmBackbone, EdmStudent, EdmStudentConfig};
pub use boot_kit::Labels;
pub use teacher::{EdmTeacher, EdmTeacherConfig};

boot_sdk::declare_plugin!("edm");
