//! Built-in guidance: none, and classifier-free guidance with a fixed or per-sample random weight.

mod cfg;
mod unguided;

pub use cfg::{Cfg, CfgConfig};
pub use unguided::{NoGuidance, NoGuidanceConfig};
