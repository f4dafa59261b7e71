//! Softmax over the last dimension as one custom op with a one-op backward: `y = exp(x - max) / sum`, and
//! `dx = y * (dy - sum(dy * y))` from `x` and `dy` (`y` recomputed in `f32`: the `1 - y` of a peaked row does
//! not survive a `bf16` output). candle's `ops::softmax` is five element-wise and
//! reduction ops forward (max, subtract, exp, sum, divide: 22 ms of one ImageNet-64 UNet evaluation at batch
//! 128 on an H200, against 0.8 ms for PyTorch's) and more backward; `ops::softmax_last_dim` has no backward.
//!
//! Storage dtypes `f32`, `f64`, `bf16`, `f16`; arithmetic in `f32` (`f64` for `f64`), each result rounded once
//! to the input's dtype, so a `bf16` input gives what `softmax(x.float()).to(bf16)` gives. CUDA kernels:
//! `softmax_op.cu` (one warp per row), compiled once per process with NVRTC.

use crate::candle::backend::BackendStorage;
use crate::candle::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use crate::ops::custom_op::dispatch;

/// The op name of error messages.
const OP: &str = "softmax";

/// Softmax of `x` over its last dimension (see the module docs).
pub(crate) fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

/// `(rows, row length)` of a contiguous argument.
fn rows(l: &Layout) -> Result<(usize, usize)> {
    match l.dims().split_last() {
        Some((&len, rest)) if l.is_contiguous() => Ok((rest.iter().product(), len)),
        _ => bail!("{OP}: expected a contiguous tensor of rank >= 1, got shape {:?}", l.dims()),
    }
}

/// The forward op: argument `x`, result the softmax of each row.
#[derive(Debug, Clone, Copy)]
struct Softmax;

/// The backward op: arguments `(x, dy)`, result `dx`.
#[derive(Debug, Clone, Copy)]
struct SoftmaxGrad;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, x: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (r, len) = rows(l)?;
        let y = dispatch!(OP, x.dtype(), cpu::forward((x, l), r, len))?;
        Ok((y, l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, x: &crate::candle::CudaStorage, l: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        let (r, len) = rows(l)?;
        let y = dispatch!(OP, x.dtype(), cuda::forward((x, l), r, len))?;
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&dy.contiguous()?, &SoftmaxGrad)?))
    }
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "softmax-grad"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, dy: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (r, len) = rows(xl)?;
        if xl.shape() != dl.shape() || x.dtype() != dy.dtype() {
            bail!("{OP}: the gradient {:?} does not match the input {:?}", dl.dims(), xl.dims());
        }
        let dx = dispatch!(OP, x.dtype(), cpu::backward((x, xl), (dy, dl), r, len))?;
        Ok((dx, xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, x: &crate::candle::CudaStorage, xl: &Layout, dy: &crate::candle::CudaStorage, dl: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        let (r, len) = rows(xl)?;
        if xl.shape() != dl.shape() || x.dtype() != dy.dtype() {
            bail!("{OP}: the gradient {:?} does not match the input {:?}", dl.dims(), xl.dims());
        }
        let dx = dispatch!(OP, x.dtype(), cuda::backward((x, xl), (dy, dl), r, len))?;
        Ok((dx, xl.shape().clone()))
    }
}

/// The CPU loops, in `f64` (rounded once to the storage type).
mod cpu {
    use super::OP;
    use crate::candle::{CpuStorage, Layout, Result, WithDType};
    use crate::ops::custom_op::cpu_slice;

    pub(super) fn forward<T: WithDType>(x: (&CpuStorage, &Layout), r: usize, len: usize) -> Result<CpuStorage> {
        let x = cpu_slice::<T>(x.0, x.1, OP)?;
        let mut y = Vec::with_capacity(r * len);
        for row in x.chunks_exact(len.max(1)) {
            let m = row.iter().map(|v| v.to_f64()).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v.to_f64() - m).exp()).collect();
            let s: f64 = e.iter().sum();
            y.extend(e.into_iter().map(|v| T::from_f64(v / s)));
        }
        Ok(T::to_cpu_storage_owned(y))
    }

    pub(super) fn backward<T: WithDType>(x: (&CpuStorage, &Layout), dy: (&CpuStorage, &Layout), r: usize, len: usize) -> Result<CpuStorage> {
        let (x, dy) = (cpu_slice::<T>(x.0, x.1, OP)?, cpu_slice::<T>(dy.0, dy.1, OP)?);
        let mut dx = Vec::with_capacity(r * len);
        for (xr, gr) in x.chunks_exact(len.max(1)).zip(dy.chunks_exact(len.max(1))) {
            let m = xr.iter().map(|v| v.to_f64()).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = xr.iter().map(|v| (v.to_f64() - m).exp()).collect();
            let s: f64 = e.iter().sum();
            let dot: f64 = e.iter().zip(gr).map(|(a, b)| a / s * b.to_f64()).sum();
            dx.extend(e.iter().zip(gr).map(|(a, b)| T::from_f64(a / s * (b.to_f64() - dot))));
        }
        Ok(T::to_cpu_storage_owned(dx))
    }
}

/// The CUDA kernels of `softmax_op.cu`: one warp per row, 8 rows a block.
#[cfg(feature = "cuda")]
mod cuda {
    use super::OP;
    use crate::candle::backend::BackendStorage;
    use crate::candle::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
    use crate::candle::cuda_backend::{CudaStorage, WrapErr};
    use crate::candle::{Layout, Result};
    use crate::ops::custom_op::cuda::{view, Elem, Kernels};

    /// The kernels, loaded as `boot_softmax`.
    static KERNELS: Kernels = Kernels::new("boot_softmax", "softmax_op.cu", include_str!("softmax_op.cu"));
    /// Rows of a block (one warp each).
    const ROWS: usize = 8;

    fn config(r: usize) -> LaunchConfig {
        let blocks = r.div_ceil(ROWS).max(1) as u32;
        LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (32 * ROWS as u32, 1, 1), shared_mem_bytes: 0 }
    }

    pub(super) fn forward<T: Elem>(x: (&CudaStorage, &Layout), r: usize, len: usize) -> Result<CudaStorage> {
        let dev = x.0.device();
        let xv = view::<T>(x.0, x.1, OP)?;
        // SAFETY: every element is written by the kernel.
        let y = unsafe { dev.alloc::<T>((r * len).max(1))? };
        let f = KERNELS.func(dev, &format!("softmax_forward_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&y).arg(&r).arg(&len);
        // SAFETY: argument types and order match the kernel; warps past the last row return.
        unsafe { launch.launch(config(r)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
    }

    pub(super) fn backward<T: Elem>(x: (&CudaStorage, &Layout), dy: (&CudaStorage, &Layout), r: usize, len: usize) -> Result<CudaStorage> {
        let dev = x.0.device();
        let (xv, gv) = (view::<T>(x.0, x.1, OP)?, view::<T>(dy.0, dy.1, OP)?);
        // SAFETY: every element is written by the kernel.
        let dx = unsafe { dev.alloc::<T>((r * len).max(1))? };
        let f = KERNELS.func(dev, &format!("softmax_backward_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&gv).arg(&dx).arg(&r).arg(&len);
        // SAFETY: as the forward; `dy` has the input's shape (checked by the op).
        unsafe { launch.launch(config(r)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(dx, dev.clone()))
    }
}
