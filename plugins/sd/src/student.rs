//! The BOOT student built from a Stable Diffusion teacher: `[student] kind = "sd-student"`.
//!
//! ```toml
//! [student]
//! kind = "sd-student"
//! # teacher_timestep = 989.01  # default: the teacher's timestep of the run schedule's lambda(t_max)
//! ```
//!
//! The plugin kit's teacher-initialised student (`kit/src/teacher_init.rs`) over the teacher's
//! UNet2DConditionModel, conditioned on the same text embeddings: its timestep input is fixed at the
//! teacher's timestep of `lambda(t_max)`, its input is the noise `eps`, and the zero-initialised embeddings of
//! the target time and `w` (`boot_time_embedding`, `boot_w_embedding`) are added to the time embedding.

use boot_kit::text_unet::TextUNetTeacher;
use boot_kit::{TeacherInitStudent, TextUNetBackbone};
use boot_sdk::{Student, StudentConfig, StudentContext};
use serde::Deserialize;

/// `[student] kind = "sd-student"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdStudentConfig {
    /// The teacher's (fractional) timestep fed to the network; default: the teacher's timestep of the run
    /// schedule's `lambda(t_max)`, where the boundary condition holds at initialisation.
    #[serde(default)]
    pub teacher_timestep: Option<f64>,
}

/// The Stable Diffusion student: the kit's teacher-initialised student over the teacher's UNet.
pub type SdStudent = TeacherInitStudent<SdBackbone>;

impl SdStudentConfig {
    /// Builds the student (also usable without the typetag registry).
    pub fn build_student(&self, ctx: &StudentContext) -> boot_sdk::Result<SdStudent> {
        TextUNetTeacher::student(ctx, "sd-student", "sd", self.teacher_timestep)
    }
}

boot_sdk::register! {
    student "sd-student" => "the Stable Diffusion teacher's UNet2DConditionModel with zero-initialised target-time (and w) embeddings, initialised from the teacher";
    impl StudentConfig for SdStudentConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            Ok(Box::new(self.build_student(ctx)?))
        }
    }
}

/// The teacher's UNet at the fixed timestep `s_max` (the kit's text-UNet backbone).
pub type SdBackbone = TextUNetBackbone;
