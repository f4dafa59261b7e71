//! The BOOT student built from an IF stage I teacher: `[student] kind = "if-student"`.
//!
//! ```toml
//! [student]
//! kind = "if-student"
//! # teacher_timestep = 980.0  # default: the teacher's timestep of the run schedule's lambda(t_max)
//! ```
//!
//! The plugin kit's teacher-initialised student (`kit/src/teacher_init.rs`) over the teacher's IF UNet
//! (`kit/src/text_unet.rs`, as sd-student), conditioned on the same text embeddings (the UNet's text addition
//! embedding sees the same states): its timestep input is fixed at the teacher's timestep of `lambda(t_max)`,
//! its input is the noise `eps`, its prediction the eps half of the 6 output channels turned into `x0`, and the
//! zero-initialised embeddings of the target time and `w` (`boot_time_embedding`, `boot_w_embedding`) are added
//! to the time embedding.

use boot_kit::text_unet::TextUNetTeacher;
use boot_kit::{TeacherInitStudent, TextUNetBackbone};
use boot_sdk::{Student, StudentConfig, StudentContext};
use serde::Deserialize;

/// `[student] kind = "if-student"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IfStudentConfig {
    /// The teacher's (fractional) timestep fed to the network; default: the teacher's timestep of the run
    /// schedule's `lambda(t_max)`, where the boundary condition holds at initialisation.
    #[serde(default)]
    pub teacher_timestep: Option<f64>,
}

/// The IF student: the kit's teacher-initialised student over the teacher's UNet.
pub type IfStudent = TeacherInitStudent<TextUNetBackbone>;

impl IfStudentConfig {
    /// Builds the student (also usable without the typetag registry).
    pub fn build_student(&self, ctx: &StudentContext) -> boot_sdk::Result<IfStudent> {
        TextUNetTeacher::student(ctx, "if-student", "if", self.teacher_timestep)
    }
}

boot_sdk::register! {
    student "if-student" => "the IF stage I teacher's UNet2DConditionModel with zero-initialised target-time (and w) embeddings, initialised from the teacher";
    impl StudentConfig for IfStudentConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            Ok(Box::new(self.build_student(ctx)?))
        }
    }
}
