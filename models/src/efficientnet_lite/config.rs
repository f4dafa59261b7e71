//! The shape of an EfficientNet-Lite network: stem, stages of inverted-residual blocks, head.

use serde::{Deserialize, Serialize};

/// One stage: `repeats` blocks, the first with `stride` and `in_channels -> out_channels`, the others with
/// stride 1 and `out_channels -> out_channels` (the block strings `r1_k3_s11_e1_i32_o16` of the original).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Number of blocks.
    pub repeats: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Stride of the stage's first block.
    pub stride: usize,
    /// Expansion ratio of the inverted bottleneck (1: no expansion convolution).
    pub expand_ratio: usize,
    /// Input channels of the stage's first block.
    pub in_channels: usize,
    /// Output channels of every block of the stage.
    pub out_channels: usize,
}

/// An EfficientNet-Lite: ReLU6, no squeeze-excitation, TensorFlow "same" padding, stem and head not scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficientNetLiteConfig {
    /// Channels of the 3x3 stride-2 stem convolution.
    pub stem_channels: usize,
    /// The stages, in order.
    pub stages: Vec<StageConfig>,
    /// Channels of the 1x1 head convolution (the feature width).
    pub head_channels: usize,
    /// Classes of the final linear layer `_fc`.
    pub num_classes: usize,
    /// BatchNorm epsilon.
    pub batch_norm_eps: f64,
    /// Input resolution the network was trained at (images are resized to it).
    pub image_size: usize,
}

impl EfficientNetLiteConfig {
    /// EfficientNet-Lite0 (ImageNet, 224x224, 1280 features, 1000 classes).
    pub fn lite0() -> Self {
        let stage = |repeats, kernel, stride, expand_ratio, in_channels, out_channels| StageConfig { repeats, kernel, stride, expand_ratio, in_channels, out_channels };
        Self {
            stem_channels: 32,
            stages: vec![
                stage(1, 3, 1, 1, 32, 16),
                stage(2, 3, 2, 6, 16, 24),
                stage(2, 5, 2, 6, 24, 40),
                stage(3, 3, 2, 6, 40, 80),
                stage(3, 5, 1, 6, 80, 112),
                stage(4, 5, 2, 6, 112, 192),
                stage(1, 3, 1, 6, 192, 320),
            ],
            head_channels: 1280,
            num_classes: 1000,
            batch_norm_eps: 1e-3,
            image_size: 224,
        }
    }
}
