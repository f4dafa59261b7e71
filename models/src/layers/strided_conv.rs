//! `torch.nn.Conv2d` with an explicit stride and zero padding (keys `weight [out, in, k, k]`, optional
//! `bias [out]`): the stride-2 down-sampling convolutions of guided-diffusion (`Downsample.op`) and
//! diffusers (`Downsample2D.conv`). Stride-1 "same" convolutions use [`crate::Conv2d`].

use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// A square-kernel 2-D convolution with stride and symmetric zero padding.
#[derive(Debug, Clone)]
pub struct StridedConv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl StridedConv2d {
    /// Loads `weight` (and `bias`) of a `kernel x kernel` convolution from `in_channels` to `out_channels`.
    pub fn new(vb: VarBuilder, in_channels: usize, out_channels: usize, kernel: usize, stride: usize, padding: usize, bias: bool) -> Result<Self> {
        if stride == 0 {
            crate::candle::bail!("conv2d: stride must be positive");
        }
        let weight = vb.get((out_channels, in_channels, kernel, kernel), "weight")?;
        let bias = if bias { Some(vb.get(out_channels, "bias")?) } else { None };
        Ok(Self { weight, bias, stride, padding })
    }

    /// Applies the convolution to `x` (`[B, C_in, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = boot_sdk::ops::conv2d(x, &self.weight.to_dtype(x.dtype())?, self.padding, self.stride, 1)?;
        match &self.bias {
            Some(b) => boot_sdk::ops::add_channel_bias(&y, b),
            None => Ok(y),
        }
    }
}
