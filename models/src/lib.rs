//! The model library of boot: layers, embeddings, strict loading, and one folder per upstream codebase,
//! on the one copy of candle inside `libboot_sdk.so` (used only through `boot_sdk::candle` and
//! `boot_sdk::candle_nn`). An ordinary crate: plugins link what they use of it.
//!
//! Every model is a plain struct built with `new(vb, &cfg)` from a [`VarBuilder`](boot_sdk::candle_nn::VarBuilder)
//! and applied with `forward`. Parameter names mirror the upstream state-dict keys (ADM / EDM / diffusers),
//! so checkpoints load unconverted through [`load_strict`] (or any `VarBuilder`, e.g. a student's `VarMap`).
//! Buffers that the originals keep in their state dicts (FIR resampling filters, Fourier frequencies) are
//! read through the same builder; [`FrozenOverlay`] serves them as constants when the parameters come from a
//! `VarMap`. The kernels the layers call (fused group norm, SiLU, softmax, convolutions) are
//! [`boot_sdk::ops`].
//!
//! Numerics follow the originals: in `f32` the layers compute what the PyTorch code computes (including its
//! float32 "islands"); in `f64` everything is computed in `f64` (a ground truth).
//!
//! | file | what |
//! |---|---|
//! | [`layers::group_norm`] | group normalisation over [`boot_sdk::ops::group_norm`], with EDM's `num_groups = min(32, C / 4)` rule |
//! | [`layers::activation`] | the activations by their upstream names (SiLU is [`boot_sdk::ops::silu`]) |
//! | [`layers::linear`] | fully connected layer (`weight [out, in]`, optional `bias`) |
//! | [`layers::conv`] | 2-D convolution with EDM's optional FIR up/down-sampling (incl. the fused down path) |
//! | [`layers::strided_conv`] | strided 3x3 convolution (ADM's and diffusers' down-sampling) |
//! | [`layers::resample`] | FIR resampling filters (`resample_filter` buffers) and depthwise up/down-sampling |
//! | [`layers::attention`] | scaled dot-product attention, EDM/ADM self-attention, reusable cross-attention |
//! | [`layers::batch_norm`] | batch normalisation in inference mode (running statistics) |
//! | [`layers::layer_norm`] | layer normalisation (diffusers' transformer blocks) |
//! | [`layers::label`] | class labels: one-hot rows (all-zero = unconditional) and label embeddings |
//! | [`embeddings::positional`] | sinusoidal embedding (endpoint and cos/sin order options) |
//! | [`embeddings::fourier`] | random Fourier feature embedding (`freqs` buffer) |
//! | [`embeddings::timesteps`] | ADM's and diffusers' timestep sinusoids |
//! | [`strict`] | strict checkpoint loading: missing / extra / mis-shaped tensors are one-line input errors |
//! | [`overlay`] | a builder serving frozen buffers as constants and everything else from another builder |
//! | [`config`] | reading an upstream JSON config: errors name the file and key, unknown keys are one warning |
//! | [`adm`] | openai/guided-diffusion: `UNetModel` and its blocks |
//! | [`edm`] | NVlabs/edm: `SongUNet`, `DhariwalUNet`, `UNetBlock`, the preconditioners, the converter JSON, `edm_sampler` |
//! | [`transformers`] | huggingface/transformers: the `CLIPTextModel` text encoder and the `CLIPTokenizer` (Stable Diffusion's), the `T5EncoderModel` and the `T5Tokenizer` (DeepFloyd IF's) |
//! | [`diffusers`] | huggingface/diffusers: `UNet2DModel`, `UNet2DConditionModel` and their blocks, the `AutoencoderKL` decoder (a latent teacher's `decode`) |
//! | [`efficientnet_lite`] | EfficientNet-Lite (lukemelas' EfficientNet-PyTorch): the Fréchet-distance feature network and its input transform |

use boot_sdk::{candle, candle_nn, serde_json, Result};

pub mod adm;
pub mod config;
pub mod diffusers;
pub mod edm;
pub mod efficientnet_lite;
pub mod embeddings;
pub mod layers;
pub mod overlay;
pub mod strict;
pub mod transformers;

pub use embeddings::fourier::FourierEmbedding;
pub use embeddings::positional::{PositionalEmbedding, SinusoidOrder};
pub use layers::attention::{scaled_dot_product_attention, CrossAttention, QkvAttention};
pub use layers::conv::{Conv2d, Conv2dConfig};
pub use layers::group_norm::{edm_num_groups, GroupNorm};
pub use layers::label::{one_hot_labels, ClassEmbeddingTable, LabelEmbedding};
pub use layers::linear::Linear;
pub use layers::resample::ResampleFilter;
pub use overlay::FrozenOverlay;
pub use strict::load_strict;

/// The dtype a network computes its conditioning in (timestep and noise-level sinusoids, the embedding MLP,
/// label and student embeddings) when its body runs in `dtype`: `f32` for a half-precision body (`bf16`,
/// `f16`; as PyTorch's autocast and guided-diffusion's `use_fp16` keep these in `f32`: a `bf16` timestep
/// such as 999 is only good to 4 steps), else `dtype` itself. Blocks cast the embedding's projections to
/// their input's dtype, so `f32` and `f64` networks are unchanged.
pub fn embedding_dtype(dtype: candle::DType) -> candle::DType {
    use candle::DType;
    match dtype {
        DType::BF16 | DType::F16 => DType::F32,
        d => d,
    }
}
