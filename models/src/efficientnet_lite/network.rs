//! `EfficientNet` (Lite settings) of lukemelas' EfficientNet-PyTorch as packaged in
//! `efficientnet-lite-pytorch==0.1.0`, with its state-dict keys.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::batch_norm::BatchNorm2d;
use crate::layers::linear::Linear;

use super::block::{relu6, BlockArgs, MbConvBlock};
use super::config::EfficientNetLiteConfig;
use super::same_conv::SameConv2d;

/// Stem (`_conv_stem`, `_bn0`), blocks (`_blocks.N`), head (`_conv_head`, `_bn1`), global average pooling
/// and the classifier (`_fc`; dropout is the identity in inference).
#[derive(Debug, Clone)]
pub struct EfficientNetLite {
    stem: SameConv2d,
    bn0: BatchNorm2d,
    blocks: Vec<MbConvBlock>,
    head: SameConv2d,
    bn1: BatchNorm2d,
    fc: Linear,
}

impl EfficientNetLite {
    /// Loads the network described by `cfg`.
    pub fn new(vb: VarBuilder, cfg: &EfficientNetLiteConfig) -> Result<Self> {
        let eps = cfg.batch_norm_eps;
        let mut blocks = Vec::new();
        for s in &cfg.stages {
            for r in 0..s.repeats {
                let (in_channels, stride) = if r == 0 { (s.in_channels, s.stride) } else { (s.out_channels, 1) };
                let args = BlockArgs { in_channels, out_channels: s.out_channels, kernel: s.kernel, stride, expand_ratio: s.expand_ratio, residual: r > 0 };
                blocks.push(MbConvBlock::new(vb.pp("_blocks").pp(blocks.len()), &args, eps)?);
            }
        }
        let last = cfg.stages.last().map_or(cfg.stem_channels, |s| s.out_channels);
        Ok(Self {
            stem: SameConv2d::new(vb.pp("_conv_stem"), 3, cfg.stem_channels, 3, 2, 1)?,
            bn0: BatchNorm2d::new(vb.pp("_bn0"), cfg.stem_channels, eps)?,
            blocks,
            head: SameConv2d::new(vb.pp("_conv_head"), last, cfg.head_channels, 1, 1, 1)?,
            bn1: BatchNorm2d::new(vb.pp("_bn1"), cfg.head_channels, eps)?,
            fc: Linear::new(vb.pp("_fc"), cfg.head_channels, cfg.num_classes, true)?,
        })
    }

    /// The pooled penultimate activations `[B, head_channels]` (the input of `_fc`) of a normalised batch
    /// `[B, 3, H, W]` (see [`super::preprocess`]): the Fréchet-distance features.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = relu6(&self.bn0.forward(&self.stem.forward(x)?)?)?;
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        relu6(&self.bn1.forward(&self.head.forward(&h)?)?)?.mean((2, 3))
    }

    /// ImageNet logits `[B, num_classes]` of a normalised batch.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc.forward(&self.features(x)?)
    }
}
