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

/// ReLU6, the Lite activation.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

impl MbConvBlock {
    /// Loads a block `in_channels -> out_channels` with the given kernel, stride and expansion ratio.
    pub fn new(vb: VarBuilder, in_channels: usize, out_channels: usize, kernel: usize, stride: usize, expand_ratio: usize, eps: f64) -> Result<Self> {
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
            residual: stride == 1 && in_channels == out_channels,
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
