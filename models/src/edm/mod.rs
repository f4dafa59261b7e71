//! NVIDIA's EDM (`NVlabs/edm`, `training/networks.py` and `generate.py`) with its original module names, so
//! a converted `network-snapshot-*.pkl` (`scripts/convert_edm_pkl.py`) loads as it is.
//!
//! | file | what |
//! |---|---|
//! | [`config`] | the converter's JSON (`class_name`, `constructor_kwargs`): `SongUNet` / `DhariwalUNet` arguments, preconditioning |
//! | [`unet_block`] | `UNetBlock` (additive or adaptive scale-shift embedding, FIR up/down-sampling, attention) |
//! | [`song_unet`] | `SongUNet` (DDPM++ / NCSN++) |
//! | [`dhariwal_unet`] | `DhariwalUNet` (ADM) |
//! | [`network`] | either network behind one interface; which state-dict entries are buffers |
//! | [`precond`] | `EDMPrecond`, `VPPrecond`, `VEPrecond` coefficients in the official float32 order |
//! | [`denoiser`] | preconditioner + network, `D(x; sigma, labels)`, loaded strictly from a converted checkpoint |
//! | [`sampler`] | `edm_sampler` (Heun, Algorithm 2 of Karras et al.) |

pub mod config;
pub mod denoiser;
pub mod dhariwal_unet;
pub mod network;
pub mod precond;
pub mod sampler;
pub mod song_unet;
pub mod unet_block;

pub use config::{ArchConfig, DhariwalUNetConfig, NetworkSpec, PrecondConfig, SongUNetConfig};
pub use denoiser::EdmDenoiser;
pub use dhariwal_unet::DhariwalUNet;
pub use network::{is_buffer, EdmNetwork};
pub use precond::Precond;
pub use sampler::{edm_sampler, edm_time_steps, HeunConfig};
pub use song_unet::SongUNet;
pub use unet_block::{UNetBlock, UNetBlockConfig};
