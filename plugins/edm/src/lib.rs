//! EDM plugin: NVIDIA's EDM networks (`SongUNet` for DDPM++/NCSN++, `DhariwalUNet` for ADM) with their
//! preconditioners (`EDMPrecond`, `VPPrecond`, `VEPrecond`) as a boot teacher (`kind = "edm"`), and a BOOT
//! student initialised from the teacher (`kind = "edm-student"`, the plugin kit's teacher-initialised
//! student over [`EdmBackbone`]).
//!
//! Checkpoints: NVIDIA's `network-snapshot-*.pkl` files hold pickled Python objects; convert them once with
//! `scripts/convert_edm_pkl.py` into a `.safetensors` state dict plus a `.json` description
//! (see [`boot_models::edm::config`]). The networks, the preconditioners and EDM's Heun sampler are
//! [`boot_models::edm`], checked against the official outputs there (`models/tests/edm_*.rs`).

pub mod student;
pub mod teacher;

pub use boot_kit::Labels;
pub use student::{EdmBackbone, EdmStudent, EdmStudentConfig};
pub use teacher::{EdmTeacher, EdmTeacherConfig};

boot_sdk::declare_plugin!("edm");
