//! guided-diffusion's stand-alone `Upsample` / `Downsample` layers (used between levels when
//! `resblock_updown` is off).

use boot_sdk::ops::{avg_pool2x, upsample_nearest2x};
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::strided_conv::StridedConv2d;
use crate::{Conv2d, Conv2dConfig};

/// `Upsample(channels, use_conv)`: nearest 2x, then a 3x3 convolution (`conv`) when `use_conv`.
#[derive(Debug, Clone)]
pub struct Upsample {
    conv: Option<Conv2d>,
}

impl Upsample {
    /// Loads `conv` when `use_conv`.
    pub fn new(vb: VarBuilder, channels: usize, use_conv: bool) -> Result<Self> {
        let conv = if use_conv { Some(Conv2d::new(vb.pp("conv"), Conv2dConfig::plain(channels, channels, 3))?) } else { None };
        Ok(Self { conv })
    }

    /// Applies the layer to `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = upsample_nearest2x(x)?;
        match &self.conv {
            Some(c) => c.forward(&x),
            None => Ok(x),
        }
    }
}

/// `Downsample(channels, use_conv)`: a 3x3 stride-2 convolution (`op`, padding 1) when `use_conv`, else
/// 2x2 average pooling.
#[derive(Debug, Clone)]
pub struct Downsample {
    op: Option<StridedConv2d>,
}

impl Downsample {
    /// Loads `op` when `use_conv`.
    pub fn new(vb: VarBuilder, channels: usize, use_conv: bool) -> Result<Self> {
        let op = if use_conv { Some(StridedConv2d::new(vb.pp("op"), channels, channels, 3, 2, 1, true)?) } else { None };
        Ok(Self { op })
    }

    /// Applies the layer to `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.op {
            Some(c) => c.forward(x),
            None => avg_pool2x(x),
        }
    }
}
