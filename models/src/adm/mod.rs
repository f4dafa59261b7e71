//! openai/guided-diffusion's ADM UNet (`guided_diffusion/unet.py`) with its original module names, so a
//! `state_dict` (e.g. the released `64x64_diffusion.pt`) loads unconverted.
//!
//! | file | what |
//! |---|---|
//! | [`resblock`] | `ResBlock` (scale-shift or additive embedding, in-block up/down), `GroupNorm32` |
//! | [`attention`] | `AttentionBlock` with `QKVAttention` (new order) or `QKVAttentionLegacy` |
//! | [`resample`] | stand-alone `Upsample` / `Downsample` (when `resblock_updown` is off) |
//! | [`unet`] | `UNetModel` and its constructor arguments |
//!
//! The timestep embedding is [`crate::embeddings::timesteps::Timesteps::adm`]. Numerics follow the float32 code, including
//! its float32 islands (sinusoid table, softmax); in `f64` everything is `f64`.

pub mod attention;
pub mod resample;
pub mod resblock;
pub mod unet;

pub use attention::{attention_heads, AttentionBlock};
pub use resample::{Downsample, Upsample};
pub use resblock::{group_norm32, ResBlock, ResBlockConfig};
pub use unet::{UNetModel, UNetModelConfig};
