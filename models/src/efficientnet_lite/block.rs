//! `MBConvBlock` of the Lite variants: inverted residual bottleneck with ReLU6 and no squeeze-excitation.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::batch_norm::BatchNorm2d;

use super::same_conv::SameConv2d;

/// `[expand 1x1 -> BN -> ReLU6] -> depthwise kxk -> BN -> ReLU6 -> project 1x1 -> BN (+ input)`. Keys:
/// `_expand_conv`, `_bn0` (expansion ratio > 1), `_depthwise_conv`, `_bn1`, `_project_conv`, `_bn2`.
#[derive(Debug, Clone)]
pub struct MbConvBlock {
    expand: Option<(SameConv2d, BatchNorm2d)>,
    depthwise: SameConv2d,
    bn1: BatchNorm2d,
    project: SameConv2d,
    bn2: BatchNorm2d,
    residual: bool,
}

/// The shape of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockArgs {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Expansion ratio (1: no expansion convolution).
    pub expand_ratio: usize,
    /// Whether the input is added to the output. The original adds it to the repeated blocks of a stage
    /// only (stride 1, same channels): in a stage's first block its `stride` is a list, and `stride == 1`
    /// is false even where TensorFlow's code would add it. No stage of Lite0 starts with equal channels.
    pub residual: bool,
}

/// ReLU6, the Lite activation.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

impl MbConvBlock {
    /// Loads a block of shape `args` (BatchNorm epsilon `eps`).
    pub fn new(vb: VarBuilder, args: &BlockArgs, eps: f64) -> Result<Self> {
        let BlockArgs { in_channels, out_channels, kernel, stride, expand_ratio, residual } = *args;
        let mid = in_channels * expand_ratio;
        let expand = if expand_ratio != 1 {
            Some((SameConv2d::new(vb.pp("_expand_conv"), in_channels, mid, 1, 1, 1)?, BatchNorm2d::new(vb.pp("_bn0"), mid, eps)?))
        } else {
            None
        };
        Ok(Self {
            expand,
            depthwise: SameConv2d::new(vb.pp("_depthwise_conv"), mid, mid, kernel, stride, mid)?,
            bn1: BatchNorm2d::new(vb.pp("_bn1"), mid, eps)?,
            project: SameConv2d::new(vb.pp("_project_conv"), mid, out_channels, 1, 1, 1)?,
            bn2: BatchNorm2d::new(vb.pp("_bn2"), out_channels, eps)?,
            residual,
        })
    }

    /// Applies the block to `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = match &self.expand {
            Some((conv, bn)) => relu6(&bn.forward(&conv.forward(x)?)?)?,
            None => x.clone(),
        };
        let h = relu6(&self.bn1.forward(&self.depthwise.forward(&h)?)?)?;
        let h = self.bn2.forward(&self.project.forward(&h)?)?;
        if self.residual {
            h + x
        } else {
            Ok(h)
        }
    }
}
