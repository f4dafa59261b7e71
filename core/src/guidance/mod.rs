//! Built-in guidance: none, and classifier-free guidance with a fixed or per-sample random weight.

mod cfg;
mod unguided;

pub use cfg::{Cfg, CfgConfig, CfgWeight};
pub use unguided::{NoGuidance, NoGuidanceConfig};
