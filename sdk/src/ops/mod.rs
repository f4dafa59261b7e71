//! The kernels: tensor ops with hand-written forward and backward passes (CPU loops, NVRTC-compiled CUDA
//! kernels, cuDNN convolutions), one copy for host and plugins. The layers built on them live in the model
//! library (`boot-models`).
//!
//! | file | what |
//! |---|---|
//! | `functional.rs` | [`conv2d`], [`conv_transpose2d`] and the depthwise forms (cuDNN on CUDA, [`CudnnMode`]), and the entry points of the ops below |
//! | `group_norm_op.rs` (`.cu`) | [`group_norm`]: `act(group_norm(x) * (1 + scale) + shift)` as one op with a fused backward |
//! | `silu_op.rs` (`.cu`) | [`silu`] as one op with a one-op backward |
//! | `softmax_op.rs` (`.cu`) | [`softmax_last_dim`] |
//! | `channel_bias_op.rs` (`.cu`) | [`add_channel_bias`] |
//! | `resample_op.rs` (`.cu`) | [`upsample_nearest2x`], [`avg_pool2x`] |
//! | [`fused_update`] (`.cu`) | AdamW and EMA steps in place, one kernel per tensor |
//! | `cudnn_conv.rs` | cuDNN's three convolution passes as one custom op (feature `cudnn`) |
//! | `custom_op.rs`, `kernel_types.cu`, `sigmoid.cu` | what the ops share: argument checks, dtype dispatch, NVRTC loading |

mod channel_bias_op;
#[cfg(feature = "cudnn")]
mod cudnn_conv;
mod custom_op;
mod functional;
pub mod fused_update;
mod group_norm_op;
mod resample_op;
mod silu_op;
mod softmax_op;

pub use functional::{
    add_channel_bias, avg_pool2x, conv2d, conv_transpose2d, depthwise_conv2d, depthwise_conv_transpose2d, softmax_last_dim, upsample_nearest2x, ConvGeometry,
    CudnnMode,
};
pub use group_norm_op::group_norm;
pub use silu_op::silu;
