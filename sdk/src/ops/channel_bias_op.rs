//! `y = x + bias[c]` for `x [B, C, *spatial]` and `bias [C]` as a custom op: one kernel forward, and a backward
//! that passes `dy` through to `x` untouched and sums it per channel for `bias` in one kernel. Through
//! candle's `broadcast_add` the same thing costs a strided broadcast kernel forward and, backward, a reduction
//! over the batch and spatial dimensions that candle runs with per-element index arithmetic (the bias of
//! every convolution pays it).
//!
//! Storage dtypes `f32`, `f64`, `bf16`, `f16`; `bias` has `x`'s dtype (callers cast it, so its gradient flows
//! back to `f32` master weights through the cast). Sums in `f32` (`f64` for `f64`), rounded once. CUDA
//! kernels: `channel_bias_op.cu`, compiled once per process with NVRTC.

use crate::candle::backend::BackendStorage;
use crate::candle::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use crate::ops::custom_op::dispatch;

/// `x + bias` broadcast over every dimension but the channels (dimension 1); `bias` is cast to `x`'s dtype.
pub(crate) fn add_channel_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&bias.to_dtype(x.dtype())?.contiguous()?, ChannelBias)
}

/// The sizes of a `[B, C, S]` view of `x`.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    b: usize,
    c: usize,
    s: usize,
}

impl Sizes {
    fn of(op: &str, dims: &[usize]) -> Result<Self> {
        match dims {
            [b, c, rest @ ..] => Ok(Self { b: *b, c: *c, s: rest.iter().product() }),
            _ => bail!("{op}: expected a [B, C, ...] input, got shape {dims:?}"),
        }
    }
}

/// The forward op: arguments `(x, bias)`.
#[derive(Debug, Clone, Copy)]
struct ChannelBias;

/// The bias gradient: argument `dy`, result `[C]` in `dy`'s dtype.
#[derive(Debug, Clone, Copy)]
struct ChannelBiasGrad;

impl ChannelBias {
    fn check(xl: &Layout, bl: &Layout, same_dtype: bool) -> Result<Sizes> {
        let sizes = Sizes::of("channel bias", xl.dims())?;
        if bl.dims() != [sizes.c] || !same_dtype {
            bail!("channel bias: bias {:?} must be [{}] in the input's dtype", bl.dims(), sizes.c);
        }
        Ok(sizes)
    }
}

impl CustomOp2 for ChannelBias {
    fn name(&self) -> &'static str {
        "channel-bias"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, b: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let sizes = Self::check(xl, bl, x.dtype() == b.dtype())?;
        let y = dispatch!(self.name(), x.dtype(), cpu::add((x, xl), (b, bl), sizes))?;
        Ok((y, xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, x: &crate::candle::CudaStorage, xl: &Layout, b: &crate::candle::CudaStorage, bl: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        let sizes = Self::check(xl, bl, x.dtype() == b.dtype())?;
        let y = dispatch!(self.name(), x.dtype(), cuda::add((x, xl), (b, bl), sizes))?;
        Ok((y, xl.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, bias: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = if bias.track_op() { Some(dy.contiguous()?.apply_op1_no_bwd(&ChannelBiasGrad)?) } else { None };
        Ok((Some(dy.clone()), db))
    }
}

impl CustomOp1 for ChannelBiasGrad {
    fn name(&self) -> &'static str {
        "channel-bias-grad"
    }

    fn cpu_fwd(&self, dy: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let sizes = Sizes::of(self.name(), l.dims())?;
        let db = dispatch!(self.name(), dy.dtype(), cpu::grad((dy, l), sizes))?;
        Ok((db, Shape::from(sizes.c)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, dy: &crate::candle::CudaStorage, l: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        let sizes = Sizes::of(self.name(), l.dims())?;
        let db = dispatch!(self.name(), dy.dtype(), cuda::grad((dy, l), sizes))?;
        Ok((db, Shape::from(sizes.c)))
    }
}

/// The CPU loops, in `f32` (`f64` for `f64`).
mod cpu {
    use super::Sizes;
    use crate::candle::{CpuStorage, Layout, Result, WithDType};
    use crate::ops::custom_op::cpu_slice;

    pub(super) fn add<T: WithDType>(x: (&CpuStorage, &Layout), b: (&CpuStorage, &Layout), n: Sizes) -> Result<CpuStorage> {
        let (x, b) = (cpu_slice::<T>(x.0, x.1, "channel bias")?, cpu_slice::<T>(b.0, b.1, "channel bias")?);
        let mut y = Vec::with_capacity(n.b * n.c * n.s);
        for (i, row) in x.chunks_exact(n.s.max(1)).enumerate() {
            let bias = b[i % n.c].to_f64();
            y.extend(row.iter().map(|v| T::from_f64(v.to_f64() + bias)));
        }
        Ok(T::to_cpu_storage_owned(y))
    }

    pub(super) fn grad<T: WithDType>(dy: (&CpuStorage, &Layout), n: Sizes) -> Result<CpuStorage> {
        let dy = cpu_slice::<T>(dy.0, dy.1, "channel bias grad")?;
        let mut sums = vec![0f64; n.c];
        for (i, row) in dy.chunks_exact(n.s.max(1)).enumerate() {
            sums[i % n.c] += row.iter().map(|v| v.to_f64()).sum::<f64>();
        }
        Ok(T::to_cpu_storage_owned(sums.into_iter().map(T::from_f64).collect()))
    }
}

/// The CUDA kernels of `channel_bias_op.cu`.
#[cfg(feature = "cuda")]
mod cuda {
    use super::Sizes;
    use crate::candle::backend::BackendStorage;
    use crate::candle::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
    use crate::candle::cuda_backend::{CudaStorage, WrapErr};
    use crate::candle::{Layout, Result};
    use crate::ops::custom_op::cuda::{view, Elem, Kernels};

    /// The kernels, loaded as `boot_channel_bias`.
    static KERNELS: Kernels = Kernels::new("boot_channel_bias", "channel_bias_op.cu", include_str!("channel_bias_op.cu"));
    /// Threads of a block.
    const THREADS: u32 = 256;

    pub(super) fn add<T: Elem>(x: (&CudaStorage, &Layout), b: (&CudaStorage, &Layout), n: Sizes) -> Result<CudaStorage> {
        let dev = x.0.device();
        let (xv, bv) = (view::<T>(x.0, x.1, "channel bias")?, view::<T>(b.0, b.1, "channel bias")?);
        let len = n.b * n.c * n.s;
        // SAFETY: every element is written by the kernel.
        let y = unsafe { dev.alloc::<T>(len)? };
        let f = KERNELS.func(dev, &format!("bias_add_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&bv).arg(&y).arg(&len).arg(&n.c).arg(&n.s);
        // A thread per 16-byte vector (the kernel's vector loop; a grid-stride loop covers the rest otherwise).
        let blocks = len.div_ceil(16 / std::mem::size_of::<T>()).div_ceil(THREADS as usize).clamp(1, 1 << 16) as u32;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: argument types and order match the kernel; the grid-stride loop stops at `len`.
        unsafe { launch.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
    }

    pub(super) fn grad<T: Elem>(dy: (&CudaStorage, &Layout), n: Sizes) -> Result<CudaStorage> {
        let dev = dy.0.device();
        let dyv = view::<T>(dy.0, dy.1, "channel bias grad")?;
        // SAFETY: one block per channel writes its element.
        let db = unsafe { dev.alloc::<T>(n.c.max(1))? };
        let f = KERNELS.func(dev, &format!("bias_grad_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&dyv).arg(&db).arg(&n.b).arg(&n.c).arg(&n.s);
        let cfg = LaunchConfig { grid_dim: (n.c.max(1) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: argument types and order match the kernel; block c reads channel c of every sample.
        unsafe { launch.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(db, dev.clone()))
    }
}
