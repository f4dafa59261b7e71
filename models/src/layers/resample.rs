//! FIR resampling filters with EDM's `resample_filter` semantics: taps `f` give the 2-D filter
//! `outer(f, f) / sum(f)^2` (a `[1, 1, k, k]` buffer in the state dict), applied depthwise. Up-sampling is a
//! transposed convolution with `4 * filter`, stride 2; down-sampling a convolution with stride 2; both pad
//! `(k - 1) / 2` unless told otherwise (EDM's fused paths use other paddings).

use boot_sdk::ops as functional;
use crate::candle::{DType, Device, Result, Tensor};
use crate::candle_nn::VarBuilder;

/// A 2-D FIR filter `[1, 1, k, k]` used for depthwise 2x up/down-sampling.
#[derive(Debug, Clone)]
pub struct ResampleFilter {
    filter: Tensor,
    /// `Some(v)` when the filter is 2x2 with every entry `v` (box filter): resampling then uses nearest
    /// up-sampling / average pooling, which give the same values as the convolutions, faster.
    uniform2: Option<f64>,
}

impl ResampleFilter {
    /// The filter EDM builds from `taps`: `outer(f, f) / sum(f)^2`, computed in `f32` as EDM does, then cast.
    pub fn from_taps(taps: &[f64], dtype: DType, device: &Device) -> Result<Self> {
        let f: Vec<f32> = taps.iter().map(|&v| v as f32).collect();
        let k = f.len();
        let sum: f32 = f.iter().sum();
        let norm = sum * sum;
        let mut v = Vec::with_capacity(k * k);
        for a in &f {
            for b in &f {
                v.push(a * b / norm);
            }
        }
        let filter = Tensor::from_vec(v, (1, 1, k, k), device)?.to_dtype(dtype)?;
        Self::from_tensor(filter)
    }

    /// Reads the `resample_filter` buffer (`[1, 1, k, k]`, `k = taps.len()`) from `vb`, as EDM's `Conv2d`
    /// keeps it in its state dict.
    pub fn load(vb: VarBuilder, taps_len: usize) -> Result<Self> {
        let filter = vb.get((1, 1, taps_len, taps_len), "resample_filter")?;
        Self::from_tensor(filter)
    }

    /// Wraps a `[1, 1, k, k]` filter tensor.
    pub fn from_tensor(filter: Tensor) -> Result<Self> {
        let (_, _, kh, kw) = filter.dims4()?;
        if kh != kw || kh == 0 {
            crate::candle::bail!("resample filter must be [1, 1, k, k], got {:?}", filter.dims());
        }
        let uniform2 = if kh == 2 {
            let v: Vec<f64> = filter.flatten_all()?.to_dtype(DType::F64)?.to_vec1()?;
            if v.iter().all(|&x| x == v[0]) {
                Some(v[0])
            } else {
                None
            }
        } else {
            None
        };
        Ok(Self { filter, uniform2 })
    }

    /// Filter size `k`.
    pub fn size(&self) -> usize {
        self.filter.dims()[3]
    }

    /// The default padding `(k - 1) / 2`.
    pub fn default_padding(&self) -> usize {
        (self.size() - 1) / 2
    }

    /// The `[1, 1, k, k]` filter.
    pub fn tensor(&self) -> &Tensor {
        &self.filter
    }

    /// 2x up-sampling of `x` (`[B, C, H, W]`): depthwise `conv_transpose2d(x, 4 * filter, stride 2, padding)`.
    pub fn upsample(&self, x: &Tensor, padding: usize) -> Result<Tensor> {
        if let (Some(v), 0) = (self.uniform2, padding) {
            let up = functional::upsample_nearest2x(x)?;
            let gain = 4.0 * v;
            return if gain == 1.0 { Ok(up) } else { up * gain };
        }
        let f = (self.filter.to_dtype(x.dtype())? * 4.0)?;
        functional::depthwise_conv_transpose2d(x, &f, padding, 2)
    }

    /// 2x down-sampling of `x` (`[B, C, H, W]`): depthwise `conv2d(x, filter, stride 2, padding)`.
    pub fn downsample(&self, x: &Tensor, padding: usize) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        if let (Some(v), 0, true, true) = (self.uniform2, padding, h % 2 == 0, w % 2 == 0) {
            let avg = functional::avg_pool2x(x)?;
            let gain = 4.0 * v;
            return if gain == 1.0 { Ok(avg) } else { avg * gain };
        }
        functional::depthwise_conv2d(x, &self.filter.to_dtype(x.dtype())?, padding, 2)
    }
}
