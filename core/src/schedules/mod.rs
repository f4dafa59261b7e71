//! Built-in noise schedules, all variance preserving over continuous `t in [0, 1]`.

mod cosine;
mod discrete;
mod edm;

pub use cosine::{CosineSchedule, CosineScheduleConfig};
pub use boot_sdk::BetaSchedule;
pub use discrete::{LinearScheduleConfig, ScaledLinearScheduleConfig};
pub use edm::{EdmSchedule, EdmScheduleConfig};
