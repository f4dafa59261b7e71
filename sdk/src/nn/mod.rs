//! Layers diffusion UNets are made of, shared by the teacher plugins.
//!
//! Every layer is a plain struct built with `new(vb, ..)` from a [`VarBuilder`](crate::candle_nn::VarBuilder)
//! and applied with `forward`. Parameter names mirror the original state-dict keys (EDM / ADM / diffusers),
//! so checkpoints load unconverted through [`load_strict`] (or any `VarBuilder`, e.g. a student's `VarMap`).
//! Buffers that the originals keep in their state dicts (FIR resampling filters, Fourier frequencies) are read
//! through the same builder; [`FrozenOverlay`] serves them as constants when the parameters come from a
//! `VarMap`.
//!
//! Numerics follow the originals: in `f32` the layers compute what the PyTorch code computes (including its
//! float32 "islands"); in `f64` everything is computed in `f64` (a ground truth).
//!
//! | file | what |
//! |---|---|
//! | [`group_norm`] | group normalisation (one fused op with a fused backward, CPU and CUDA), with EDM's `num_groups = min(32, C / 4)` rule |
//! | [`silu()`] | SiLU as one op with a one-op backward (CPU and CUDA); [`activation`] names it and the other activations |
//! | [`linear`] | fully connected layer (`weight [out, in]`, optional `bias`) |
//! | [`conv`] | 2-D convolution with EDM's optional FIR up/down-sampling (incl. the fused down path) |
//! | [`functional`] | convolution / transposed convolution (cuDNN on CUDA), 2x nearest up-sampling and average pooling (one op each way, CPU and CUDA), per-channel bias, softmax over the last dimension |
//! | [`fused_update`] | AdamW and EMA steps in place, one kernel per tensor |
//! | [`resample`] | FIR resampling filters (`resample_filter` buffers) and depthwise up/down-sampling |
//! | [`positional`] | sinusoidal embedding (endpoint and cos/sin order options) |
//! | [`fourier`] | random Fourier feature embedding (`freqs` buffer) |
//! | [`label`] | class labels: one-hot rows (all-zero = unconditional) and label embeddings |
//! | [`attention`] | scaled dot-product attention, EDM/ADM self-attention, reusable cross-attention |
//! | [`unet_block`] | EDM's unified UNet block (additive or adaptive scale-shift time embedding) |
//! | [`strict`] | strict checkpoint loading: missing / extra / mis-shaped tensors are one-line input errors |
//! | [`overlay`] | a builder serving frozen buffers as constants and everything else from another builder |

pub mod activation;
pub mod adm;
pub mod attention;
mod channel_bias_op;
pub mod conv;
#[cfg(feature = "cudnn")]
mod cudnn_conv;
mod custom_op;
pub mod diffusers;
pub mod fourier;
pub mod functional;
pub mod fused_update;
pub mod group_norm;
mod group_norm_op;
pub mod label;
pub mod layer_norm;
pub mod linear;
pub mod overlay;
pub mod positional;
pub mod resample;
mod resample_op;
mod silu_op;
mod softmax_op;
pub mod strict;
pub mod strided_conv;
pub mod timesteps;
pub mod unet_block;

pub use attention::{scaled_dot_product_attention, CrossAttention, QkvAttention};
pub use conv::{Conv2d, Conv2dConfig};
pub use fourier::FourierEmbedding;
pub use group_norm::{edm_num_groups, GroupNorm};
pub use label::{one_hot_labels, ClassEmbeddingTable, LabelEmbedding};
pub use linear::Linear;
pub use overlay::FrozenOverlay;
pub use positional::{PositionalEmbedding, SinusoidOrder};
pub use resample::ResampleFilter;
pub use silu_op::silu;
pub use strict::load_strict;
pub use unet_block::{UNetBlock, UNetBlockConfig};

/// The dtype a network computes its conditioning in (timestep and noise-level sinusoids, the embedding MLP,
/// label and student embeddings) when its body runs in `dtype`: `f32` for a half-precision body (`bf16`,
/// `f16`; as PyTorch's autocast and guided-diffusion's `use_fp16` keep these in `f32`: a `bf16` timestep
/// such as 999 is only good to 4 steps), else `dtype` itself. Blocks cast the embedding's projections to
/// their input's dtype, so `f32` and `f64` networks are unchanged.
pub fn embedding_dtype(dtype: crate::candle::DType) -> crate::candle::DType {
    use crate::candle::DType;
    match dtype {
        DType::BF16 | DType::F16 => DType::F32,
        d => d,
    }
}
