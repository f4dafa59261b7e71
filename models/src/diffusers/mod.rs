//! Ports of diffusers' UNet building blocks with diffusers' parameter names, so
//! `diffusion_pytorch_model.safetensors` files load unconverted (through [`crate::load_strict`]).
//!
//! | file | what |
//! |---|---|
//! | [`embeddings`] | `TimestepEmbedding` (time MLP), `GaussianFourierProjection` |
//! | [`resnet`] | `ResnetBlock2D` (default / scale-shift time norm, in-block up/down) |
//! | [`resample`] | `Downsample2D`, `Upsample2D` |
//! | [`attention`] | `Attention` (spatial self-attention with group norm; self/cross attention) |
//! | [`added_kv_attention`] | `Attention` with added text keys and values (`AttnAddedKVProcessor2_0`; IF's blocks) |
//! | [`text_time_embedding`] | `TextTimeEmbedding`, `AttentionPooling` (IF's text-pooled time embedding) |
//! | [`transformer_2d`] | `Transformer2DModel`, `BasicTransformerBlock`, GEGLU `FeedForward` |
//! | [`block_attention`] | the attention after a block's resnets: none, spatial, transformer or added-KV |
//! | [`down_blocks`] | `DownBlock2D` / `AttnDownBlock2D` / `CrossAttnDownBlock2D` / `ResnetDownsampleBlock2D` / `SimpleCrossAttnDownBlock2D` |
//! | [`up_blocks`] | `UpBlock2D` / `AttnUpBlock2D` / `CrossAttnUpBlock2D` / `ResnetUpsampleBlock2D` / `SimpleCrossAttnUpBlock2D` |
//! | [`mid_block`] | `UNetMidBlock2D` / `UNetMidBlock2DCrossAttn` / `UNetMidBlock2DSimpleCrossAttn` |
//! | [`unet_2d`] | `UNet2DModel` and its `config.json` |
//! | [`unet_2d_condition`] | `UNet2DConditionModel` (Stable Diffusion and DeepFloyd IF layouts) and its `config.json` |
//!
//! The sinusoid (`Timesteps`) is [`crate::embeddings::timesteps::Timesteps`], the activations [`crate::layers::activation::Activation`].
//! In `f32` the layers compute what diffusers computes in float32 (its sinusoid is a float32 island);
//! in `f64` everything is `f64`.

pub mod added_kv_attention;
pub mod attention;
pub mod autoencoder_kl;
pub mod block_attention;
pub mod down_blocks;
pub mod embeddings;
pub mod mid_block;
pub mod resample;
pub mod resnet;
pub mod text_time_embedding;
pub mod transformer_2d;
pub mod unet_2d;
pub mod unet_2d_condition;
pub mod up_blocks;

pub use added_kv_attention::{AddedKvAttention, AddedKvAttentionConfig};
pub use attention::{Attention, AttentionConfig};
pub use autoencoder_kl::{AutoencoderKLConfig, AutoencoderKLDecoder};
pub use block_attention::{BlockAttention, BlockAttentionKind};
pub use down_blocks::{DownBlock2D, DownBlock2DConfig, ResampleType};
pub use embeddings::{GaussianFourierProjection, TimestepEmbedding};
pub use mid_block::{UNetMidBlock2D, UNetMidBlock2DConfig};
pub use resample::{Downsample2D, Upsample2D};
pub use resnet::{ResnetBlock2D, ResnetBlock2DConfig, ResnetOptions, TimeEmbeddingNorm};
pub use text_time_embedding::{AttentionPooling, TextTimeEmbedding};
pub use transformer_2d::{BasicTransformerBlock, FeedForward, Transformer2DConfig, Transformer2DModel};
pub use unet_2d::{UNet2DConfig, UNet2DModel};
pub use unet_2d_condition::{ClassLabels, PerBlock, UNet2DConditionConfig, UNet2DConditionModel};
pub use up_blocks::{UpBlock2D, UpBlock2DConfig};

/// Names of a diffusers UNet's traced stages in execution order (diffusers' `trace_modules`), shared by
/// [`UNet2DModel`] and [`UNet2DConditionModel`].
fn trace_module_order(down_blocks: usize, has_mid_block: bool, up_blocks: usize) -> Vec<String> {
    let mut v = vec!["conv_in".to_string()];
    v.extend((0..down_blocks).map(|i| format!("down_blocks.{i}")));
    if has_mid_block {
        v.push("mid_block".into());
    }
    v.extend((0..up_blocks).map(|i| format!("up_blocks.{i}")));
    v.extend(["conv_norm_out".to_string(), "conv_out".to_string()]);
    v
}
