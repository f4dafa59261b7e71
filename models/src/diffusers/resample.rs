//! diffusers' `Downsample2D` and `Upsample2D` (`models/resnet.py` / `models/downsampling.py`,
//! `models/upsampling.py`), in the configurations its UNets build.

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;
use crate::layers::strided_conv::StridedConv2d;
use crate::{Conv2d, Conv2dConfig};

/// `Downsample2D(channels, use_conv, out_channels, padding)`: a 3x3 stride-2 convolution (`conv`) when
/// `use_conv` (with `padding = 0`, the input is first padded by one row and column on the bottom/right, as
/// the original), else 2x2 average pooling.
#[derive(Debug, Clone)]
pub struct Downsample2D {
    conv: Option<StridedConv2d>,
    pad_bottom_right: bool,
}

impl Downsample2D {
    /// Loads `conv` when `use_conv`.
    pub fn new(vb: VarBuilder, channels: usize, use_conv: bool, out_channels: usize, padding: usize) -> Result<Self> {
        if !use_conv && channels != out_channels {
            crate::candle::bail!("Downsample2D: pooling cannot change the channel count ({channels} -> {out_channels})");
        }
        let conv = if use_conv { Some(StridedConv2d::new(vb.pp("conv"), channels, out_channels, 3, 2, padding, true)?) } else { None };
        Ok(Self { conv, pad_bottom_right: use_conv && padding == 0 })
    }

    /// Applies the layer to `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.conv {
            Some(c) if self.pad_bottom_right => c.forward(&x.pad_with_zeros(2, 0, 1)?.pad_with_zeros(3, 0, 1)?),
            Some(c) => c.forward(x),
            None => boot_sdk::ops::avg_pool2x(x),
        }
    }
}

/// `Upsample2D(channels, use_conv, out_channels)`: nearest 2x, then a 3x3 convolution (`conv`) when
/// `use_conv`.
#[derive(Debug, Clone)]
pub struct Upsample2D {
    conv: Option<Conv2d>,
}

impl Upsample2D {
    /// Loads `conv` when `use_conv`.
    pub fn new(vb: VarBuilder, channels: usize, use_conv: bool, out_channels: usize) -> Result<Self> {
        if !use_conv && channels != out_channels {
            crate::candle::bail!("Upsample2D: interpolation cannot change the channel count ({channels} -> {out_channels})");
        }
        let conv = if use_conv { Some(Conv2d::new(vb.pp("conv"), Conv2dConfig::plain(channels, out_channels, 3))?) } else { None };
        Ok(Self { conv })
    }

    /// Applies the layer to `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = boot_sdk::ops::upsample_nearest2x(x)?;
        match &self.conv {
            Some(c) => c.forward(&x),
            None => Ok(x),
        }
    }
}
