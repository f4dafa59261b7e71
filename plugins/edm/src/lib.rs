//! EDM plugin: NVIDIA's EDM networks (`SongUNet` for DDPM++/NCSN++, `DhariwalUNet` for ADM) with their
//! preconditioners (`EDMPrecond`, `VPPrecond`, `VEPrecond`) as a boot teacher (`kind = "edm"`), and a BOOT
//! student initialised from the teacher (`kind = "edm-student"`).
//!
//! Checkpoints: NVIDIA's `network-snapshot-*.pkl` files hold pickled Python objects; convert them once with
//! `scripts/convert_edm_pkl.py` into a `.safetensors` state dict plus a `.json` description
//! (see [`boot_models::edm::config`]). The networks, the preconditioners and EDM's Heun sampler are
//! [`boot_models::edm`], checked against the official outputs there (`models/tests/edm_*.rs`).

pub mod student;
pub mod teacher;

pub use student::{EdmStudent, EdmStudentConfig};
pub use teacher::{EdmTeacher, EdmTeacherConfig, Labels};

fn register(r: &mut boot_sdk::plugin::Registrar) {
    r.teacher("edm", "NVIDIA EDM network (SongUNet / DhariwalUNet with EDM, VP or VE preconditioning) from a converted checkpoint");
    r.student("edm-student", "the EDM teacher's backbone with zero-initialised target-time (and w) embeddings, initialised from the teacher");
}

boot_sdk::declare_plugin!("edm", register);
