//! The convolution and 2x resampling primitives every layer calls, with backward passes that are fast on
//! every device: on CUDA (feature `cudnn`) convolutions run as cuDNN forward / backward-data /
//! backward-filter kernels ([`super::cudnn_conv`]); elsewhere they are candle's. 2x nearest up-sampling and
//! 2x2 average pooling are custom ops with one kernel each way (`resample_op.rs`: CPU loops, NVRTC-compiled
//! CUDA kernels), where candle's are a strided copy with a slow backward (candle 0.11 differentiates
//! `upsample_nearest2d` with one convolution per channel).
//!
//! `BOOT_CUDNN` (environment, read once) picks the CUDA convolution path: `deterministic` (default:
//! the fastest algorithm whose results are reproducible, so resumed runs repeat a straight run),
//! `fast` (the fastest algorithm, as `torch.backends.cudnn.benchmark`), `off` (candle's own kernels).

use crate::candle::{DType, Result, Tensor};

/// The shape of one 2-D convolution over NCHW tensors with OIHW weights (`[out, in / groups, kh, kw]`):
/// symmetric zero padding, equal strides, dilation 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Kernel height.
    pub k_h: usize,
    /// Kernel width.
    pub k_w: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Stride.
    pub stride: usize,
    /// Channel groups (`in_channels` for a depthwise convolution).
    pub groups: usize,
}

impl ConvGeometry {
    /// The geometry of `conv2d(x, w)` for `x [B, C, H, W]` and `w [O, C / groups, kh, kw]`, checked.
    pub fn of_conv(x: &[usize], w: &[usize], padding: usize, stride: usize, groups: usize) -> Result<Self> {
        let (&[batch, in_channels, in_h, in_w], &[out_channels, w_in, k_h, k_w]) = (x, w) else {
            crate::candle::bail!("conv2d: input {x:?} and weight {w:?} must both be 4-D");
        };
        let g = Self { batch, in_channels, out_channels, in_h, in_w, k_h, k_w, padding, stride, groups };
        if stride == 0 || groups == 0 || !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
            crate::candle::bail!("conv2d: stride {stride} / groups {groups} invalid for {in_channels} -> {out_channels} channels");
        }
        if w_in * groups != in_channels {
            crate::candle::bail!("conv2d: weight {w:?} expects {} input channels, input {x:?} has {in_channels}", w_in * groups);
        }
        if in_h + 2 * padding < k_h || in_w + 2 * padding < k_w {
            crate::candle::bail!("conv2d: kernel {k_h}x{k_w} larger than the padded input {x:?} (padding {padding})");
        }
        Ok(g)
    }

    /// The geometry of the convolution whose input gradient is `conv_transpose2d(x, w)` for `x [B, C, H, W]`
    /// and `w [C, O / groups, kh, kw]` (output padding 0): its input is the transposed convolution's output.
    pub fn of_transpose(x: &[usize], w: &[usize], padding: usize, stride: usize, groups: usize) -> Result<Self> {
        let (&[batch, c, h, wd], &[w_c, o_per_group, k_h, k_w]) = (x, w) else {
            crate::candle::bail!("conv_transpose2d: input {x:?} and weight {w:?} must both be 4-D");
        };
        if w_c != c || stride == 0 || groups == 0 || !c.is_multiple_of(groups) || h == 0 || wd == 0 {
            crate::candle::bail!("conv_transpose2d: weight {w:?} / stride {stride} / groups {groups} do not fit input {x:?}");
        }
        let out = |n: usize, k: usize| ((n - 1) * stride + k).checked_sub(2 * padding).filter(|&v| v > 0);
        let (Some(in_h), Some(in_w)) = (out(h, k_h), out(wd, k_w)) else {
            crate::candle::bail!("conv_transpose2d: padding {padding} leaves no output for input {x:?}, kernel {w:?}");
        };
        let g = Self { batch, in_channels: o_per_group * groups, out_channels: c, in_h, in_w, k_h, k_w, padding, stride, groups };
        debug_assert_eq!((g.out_h(), g.out_w()), (h, wd));
        Ok(g)
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.padding - self.k_h) / self.stride + 1
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.padding - self.k_w) / self.stride + 1
    }

    /// Input shape `[B, C_in, H, W]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.in_h, self.in_w]
    }

    /// Weight shape `[C_out, C_in / groups, kh, kw]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [self.out_channels, self.in_channels / self.groups, self.k_h, self.k_w]
    }

    /// Output shape `[B, C_out, H_out, W_out]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_h(), self.out_w()]
    }
}

/// How CUDA convolutions run (`BOOT_CUDNN`; see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CudnnMode {
    /// cuDNN, fastest reproducible algorithm.
    Deterministic,
    /// cuDNN, fastest algorithm.
    Fast,
    /// candle's kernels.
    Off,
}

impl CudnnMode {
    /// Parses a `BOOT_CUDNN` value (`deterministic`, `fast`, `off`; unset = `deterministic`).
    pub fn parse(value: Option<&str>) -> std::result::Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") | Some("deterministic") => Ok(Self::Deterministic),
            Some("fast") => Ok(Self::Fast),
            Some("off") | Some("0") => Ok(Self::Off),
            Some(v) => Err(format!("'{v}' is not one of deterministic, fast, off")),
        }
    }

    /// The mode of this process: `BOOT_CUDNN` read once. `boot-host` refuses an invalid value at start-up;
    /// elsewhere it is logged and the default is used (a forward pass cannot fail half-way on it).
    pub fn current() -> Self {
        static MODE: std::sync::OnceLock<CudnnMode> = std::sync::OnceLock::new();
        *MODE.get_or_init(|| {
            let v = std::env::var("BOOT_CUDNN").ok();
            Self::parse(v.as_deref()).unwrap_or_else(|e| {
                tracing::error!("BOOT_CUDNN: {e}; using deterministic");
                Self::Deterministic
            })
        })
    }
}

/// Whether this tensor's convolutions run through cuDNN.
fn uses_cudnn(x: &Tensor) -> bool {
    cfg!(feature = "cudnn")
        && x.device().is_cuda()
        && matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16 | DType::F64)
        && CudnnMode::current() != CudnnMode::Off
}

/// `conv2d(x, w)` (PyTorch semantics: cross-correlation, symmetric zero `padding`, `stride`, `groups`);
/// `w` is cast to `x`'s dtype by the caller.
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize, groups: usize) -> Result<Tensor> {
    let geometry = ConvGeometry::of_conv(x.dims(), w.dims(), padding, stride, groups)?;
    #[cfg(feature = "cudnn")]
    if uses_cudnn(x) {
        return super::cudnn_conv::conv2d(x, w, geometry);
    }
    let _ = geometry;
    x.conv2d(w, padding, stride, 1, groups)
}

/// `conv_transpose2d(x, w)` with output padding 0 and `groups` (`w [C_in, C_out / groups, kh, kw]`);
/// `groups > 1` needs cuDNN (depthwise resampling has [`depthwise_conv_transpose2d`]).
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize, groups: usize) -> Result<Tensor> {
    let geometry = ConvGeometry::of_transpose(x.dims(), w.dims(), padding, stride, groups)?;
    #[cfg(feature = "cudnn")]
    if uses_cudnn(x) {
        return super::cudnn_conv::conv_transpose2d(x, w, geometry);
    }
    let _ = geometry;
    if groups != 1 {
        crate::candle::bail!("conv_transpose2d: groups = {groups} needs a CUDA device with cuDNN");
    }
    x.conv_transpose2d(w, padding, 0, stride, 1)
}

/// Depthwise `conv2d` of every channel of `x` (`[B, C, H, W]`) with one shared filter `f` (`[1, 1, k, k]`).
pub fn depthwise_conv2d(x: &Tensor, f: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (_, _, kh, kw) = f.dims4()?;
    if uses_cudnn(x) {
        return conv2d(x, &f.broadcast_as((c, 1, kh, kw))?.contiguous()?, padding, stride, c);
    }
    let y = x.reshape((b * c, 1, h, w))?.conv2d(f, padding, stride, 1, 1)?;
    let (_, _, ho, wo) = y.dims4()?;
    y.reshape((b, c, ho, wo))
}

/// Depthwise `conv_transpose2d` of every channel of `x` (`[B, C, H, W]`) with one shared filter `f`
/// (`[1, 1, k, k]`), output padding 0.
pub fn depthwise_conv_transpose2d(x: &Tensor, f: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (_, _, kh, kw) = f.dims4()?;
    if uses_cudnn(x) {
        return conv_transpose2d(x, &f.broadcast_as((c, 1, kh, kw))?.contiguous()?, padding, stride, c);
    }
    let y = x.reshape((b * c, 1, h, w))?.conv_transpose2d(f, padding, 0, stride, 1)?;
    let (_, _, ho, wo) = y.dims4()?;
    y.reshape((b, c, ho, wo))
}

/// Softmax of `x` over its last dimension, computed in `f32` (`f64` for `f64`) and rounded once to `x`'s
/// dtype (a `bf16` input gives `softmax(x.float()).to(bf16)`): one kernel each way, where candle's
/// `ops::softmax` is five ops forward and more backward.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    super::softmax_op::softmax_last_dim(x)
}

/// `x + bias` over the channels (dimension 1) of `x` (`[B, C, ...]`), `bias` `[C]` cast to `x`'s dtype: one
/// kernel each way (the bias gradient is one per-channel sum), where candle's `broadcast_add` differentiates
/// with a reduction that does index arithmetic per element.
pub fn add_channel_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    super::channel_bias_op::add_channel_bias(x, bias)
}

/// 2x nearest-neighbour up-sampling of `x` (`[B, C, H, W]`, float, any layout):
/// `y[.., 2i + a, 2j + d] = x[.., i, j]`, one op; its gradient, one more op, is the sum over each 2x2 block
/// of `dy` (in `f32` for half-precision, rounded once).
pub fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    super::resample_op::upsample_nearest2x(x)
}

/// 2x2 average pooling with stride 2 of `x` (`[B, C, H, W]`, float, even `H` and `W`, any layout): the mean
/// of each 2x2 block, summed in `f32` for half-precision inputs and rounded once (in `f32`, exactly candle's
/// `avg_pool2d(2)`), one op; its gradient, one more op, spreads `dy / 4` over each block. An odd `H` or `W`
/// is an error naming the shape.
pub fn avg_pool2x(x: &Tensor) -> Result<Tensor> {
    super::resample_op::avg_pool2x(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candle::{Device, Var};

    #[test]
    fn geometry_checks_shapes() -> Result<()> {
        let g = ConvGeometry::of_conv(&[2, 6, 9, 8], &[4, 3, 3, 3], 1, 2, 2)?;
        assert_eq!(g.output_dims(), [2, 4, 5, 4]);
        assert_eq!(g.weight_dims(), [4, 3, 3, 3]);
        let err = ConvGeometry::of_conv(&[2, 6, 9, 8], &[4, 6, 3, 3], 1, 1, 2).unwrap_err().to_string();
        assert!(err.contains("expects 12 input channels"), "{err}");
        assert!(ConvGeometry::of_conv(&[2, 6, 9], &[4, 6, 3, 3], 1, 1, 1).is_err());
        assert!(ConvGeometry::of_conv(&[1, 1, 2, 2], &[1, 1, 5, 5], 0, 1, 1).is_err());
        Ok(())
    }

    #[test]
    fn transpose_geometry_inverts_the_forward_shape() -> Result<()> {
        // x [2, 5, 4, 3] through conv_transpose2d(w [5, 2, 4, 4], stride 2, padding 1) -> [2, 2, 8, 6].
        let g = ConvGeometry::of_transpose(&[2, 5, 4, 3], &[5, 2, 4, 4], 1, 2, 1)?;
        assert_eq!(g.input_dims(), [2, 2, 8, 6]);
        assert_eq!(g.output_dims(), [2, 5, 4, 3]);
        let x = Tensor::randn(0f32, 1., (2, 5, 4, 3), &Device::Cpu)?;
        let w = Tensor::randn(0f32, 1., (5, 2, 4, 4), &Device::Cpu)?;
        assert_eq!(conv_transpose2d(&x, &w, 1, 2, 1)?.dims(), &g.input_dims());
        Ok(())
    }

    #[test]
    fn cudnn_mode_parses() -> std::result::Result<(), String> {
        assert_eq!(CudnnMode::parse(None)?, CudnnMode::Deterministic);
        assert_eq!(CudnnMode::parse(Some("fast"))?, CudnnMode::Fast);
        assert_eq!(CudnnMode::parse(Some("off"))?, CudnnMode::Off);
        assert!(CudnnMode::parse(Some("quick")).unwrap_err().contains("'quick'"));
        Ok(())
    }

    /// The resampling ops in `dtype` against candle's `upsample_nearest2d` / `avg_pool2d` on the same values
    /// in `f32`, rounded once (what the ops compute), and their gradients against the block sums / spread
    /// output gradients, written out in `f32`. Exact in every dtype but the up-sampling's gradient in `f32`
    /// (another summation order: `tol`).
    fn check_resampling(dtype: DType, tol: f32) -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (2, 3, 4, 6), &dev)?.to_dtype(dtype)?)?;
        let x32 = x.to_dtype(DType::F32)?;
        let max_diff = |a: &Tensor, b: &Tensor| -> Result<f32> {
            assert_eq!(a.dtype(), dtype);
            a.to_dtype(DType::F32)?.sub(&b.to_dtype(DType::F32)?)?.abs()?.max_all()?.to_scalar::<f32>()
        };
        let up = upsample_nearest2x(x.as_tensor())?;
        assert_eq!(max_diff(&up, &x32.upsample_nearest2d(8, 12)?.to_dtype(dtype)?)?, 0.0);
        let pooled = avg_pool2x(x.as_tensor())?;
        assert_eq!(max_diff(&pooled, &x32.avg_pool2d(2)?.to_dtype(dtype)?)?, 0.0);
        // d/dx sum(r * up(x)) = 2x2 block sums of r; d/dx sum(r * pool(x)) = r / 4 spread over each block.
        let r = Tensor::randn(0f32, 1., (2, 3, 8, 12), &dev)?.to_dtype(dtype)?;
        let grads = (up * &r)?.sum_all()?.backward()?;
        let expected = r.to_dtype(DType::F32)?.reshape((2, 3, 4, 2, 6, 2))?.sum(5)?.sum(3)?.to_dtype(dtype)?;
        let got = grads.get(&x).expect("gradient of x");
        assert!(max_diff(got, &expected)? <= tol, "{dtype:?}: upsample gradient");
        let r = Tensor::randn(0f32, 1., (2, 3, 2, 3), &dev)?.to_dtype(dtype)?;
        let grads = (pooled * &r)?.sum_all()?.backward()?;
        let expected = (r.to_dtype(DType::F32)?.upsample_nearest2d(4, 6)? * 0.25)?.to_dtype(dtype)?;
        let got = grads.get(&x).expect("gradient of x");
        assert_eq!(max_diff(got, &expected)?, 0.0, "{dtype:?}: avg-pool gradient");
        Ok(())
    }

    #[test]
    fn resampling_matches_candle_and_differentiates() -> Result<()> {
        check_resampling(DType::F32, 1e-6)?;
        // One half-precision step of a block sum up to ~8 (f32 summation orders differ by an ulp at most).
        check_resampling(DType::BF16, 0.0625)?;
        check_resampling(DType::F16, 0.0078125)
    }

    #[test]
    fn depthwise_paths_match_a_dense_convolution() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (2, 3, 6, 6), &dev)?;
        let f = Tensor::randn(0f32, 1., (1, 1, 4, 4), &dev)?;
        // A dense weight that is the filter on the diagonal and zero elsewhere.
        let eye = Tensor::eye(3, DType::F32, &dev)?.reshape((3, 3, 1, 1))?;
        let dense = eye.broadcast_mul(&f)?;
        let down = depthwise_conv2d(&x, &f, 1, 2)?;
        let reference = x.conv2d(&dense, 1, 2, 1, 1)?;
        assert!(down.sub(&reference)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
        let up = depthwise_conv_transpose2d(&x, &f, 1, 2)?;
        let reference = x.conv_transpose2d(&dense, 1, 0, 2, 1)?;
        assert!(up.sub(&reference)?.abs()?.max_all()?.to_scalar::<f32>()? < 1e-5);
        Ok(())
    }
}
