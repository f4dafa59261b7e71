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
        let (_, c, h, w) = x.dims4()?;
        let (ph, pw) = (self.padding(h), self.padding(w));
        let weight = self.weight.to_dtype(x.dtype())?;
        if self.groups > 1 && self.groups == c && x.device().is_cpu() {
            return self.depthwise_by_taps(x, &weight, ph.0, pw.0);
        }
        if ph.0 == ph.1 && pw.0 == pw.1 && ph == pw {
            return functional::conv2d(x, &weight, ph.0, self.stride, self.groups);
        }
        let x = x.pad_with_zeros(2, ph.0, ph.1)?.pad_with_zeros(3, pw.0, pw.1)?;
        functional::conv2d(&x, &weight, 0, self.stride, self.groups)
    }

    /// A depthwise convolution on the CPU as the sum over the `k x k` taps of a shifted, strided view times
    /// the tap's per-channel weight: candle's grouped convolution runs one convolution per channel there
    /// (over 20 GB for a batch of 64 at 224x224). `top` and `left` are the "same" padding before the image.
    fn depthwise_by_taps(&self, x: &Tensor, weight: &Tensor, top: usize, left: usize) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (k, s) = (self.kernel, self.stride);
        let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
        // Every tap reads `s * ho` rows from its offset: zeros past the "same" padding are never sampled.
        let (rows, cols) = (k - 1 + s * ho, k - 1 + s * wo);
        let x = x.pad_with_zeros(2, top, rows - h - top)?.pad_with_zeros(3, left, cols - w - left)?;
        let taps = weight.reshape((c, k * k))?;
        let mut sum: Option<Tensor> = None;
        for dy in 0..k {
            for dx in 0..k {
                let view = x.narrow(2, dy, s * ho)?.narrow(3, dx, s * wo)?;
                let view = if s == 1 { view } else { view.reshape((b, c, ho, s, wo, s))?.narrow(3, 0, 1)?.narrow(5, 0, 1)?.reshape((b, c, ho, wo))? };
                let term = view.broadcast_mul(&taps.narrow(1, dy * k + dx, 1)?.reshape((1, c, 1, 1))?)?;
                sum = Some(match sum {
                    Some(acc) => (acc + term)?,
                    None => term,
                });
            }
        }
        sum.ok_or_else(|| crate::candle::Error::Msg("depthwise convolution with an empty kernel".into()))
    }
}
