//! Convolution with TensorFlow's "same" padding (`Conv2dStaticSamePadding` of the original): output size
//! `ceil(in / stride)`, the padding split with the odd pixel at the bottom/right.

use boot_sdk::ops as functional;
use crate::candle::{Result, Tensor};
use crate::candle_nn::VarBuilder;

/// A bias-free `kernel x kernel` convolution (`groups = channels` for depthwise). Key: `weight`
/// `[out, in / groups, k, k]`.
#[derive(Debug, Clone)]
pub struct SameConv2d {
    weight: Tensor,
    kernel: usize,
    stride: usize,
    groups: usize,
}

impl SameConv2d {
    /// Loads `weight`.
    pub fn new(vb: VarBuilder, in_channels: usize, out_channels: usize, kernel: usize, stride: usize, groups: usize) -> Result<Self> {
        let weight = vb.get((out_channels, in_channels / groups, kernel, kernel), "weight")?;
        Ok(Self { weight, kernel, stride, groups })
    }

    /// The zero padding (before, after) of one spatial axis of `size` pixels.
    fn padding(&self, size: usize) -> (usize, usize) {
        let out = size.div_ceil(self.stride);
        let total = ((out - 1) * self.stride + self.kernel).saturating_sub(size);
        (total / 2, total - total / 2)
    }

    /// Convolves `x` (`[B, C, H, W]`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (ph, pw) = (self.padding(h), self.padding(w));
        let weight = self.weight.to_dtype(x.dtype())?;
        if ph.0 == ph.1 && pw.0 == pw.1 && ph == pw {
            return functional::conv2d(x, &weight, ph.0, self.stride, self.groups);
        }
        let x = x.pad_with_zeros(2, ph.0, ph.1)?.pad_with_zeros(3, pw.0, pw.1)?;
        functional::conv2d(&x, &weight, 0, self.stride, self.groups)
    }
}
