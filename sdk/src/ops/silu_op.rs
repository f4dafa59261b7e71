//! SiLU as one custom op with a one-op backward: `y = x * s` and `dx = dy * s * (1 + x * (1 - s))`,
//! `s = sigmoid(x)`, the gradient computed from `x` and `dy` by a second (no-grad) op. candle's own
//! `Tensor::silu` differentiates with about seven element-wise ops, each a full pass over the tensor.
//!
//! Storage dtypes `f32`, `f64`, `bf16`, `f16`; arithmetic in `f32` (`f64` for `f64` inputs) on the CPU and on
//! CUDA, each result rounded once to the input's dtype. `sigmoid` takes `exp` of `-|x|` only, so no
//! exponential overflows at any `x` (the same expression on both devices). CUDA kernels: `silu_op.cu` after `sigmoid.cu`,
//! compiled once per process with NVRTC.

use crate::candle::backend::BackendStorage;
use crate::candle::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use crate::ops::custom_op::{check_arg, dispatch};

/// The op name of error messages.
const OP: &str = "silu";

/// SiLU (swish), `x * sigmoid(x)`, element-wise on a float tensor of any shape, as one op whose backward is
/// one more op (candle's `Tensor::silu` backward takes about seven). Computed in `f32` (`f64` for `f64`) and
/// rounded once to `x`'s dtype; safe for any `|x|` (no overflowing `exp`).
pub fn silu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Silu)
}

/// The forward op: argument `x` (contiguous), result `x * sigmoid(x)`.
#[derive(Debug, Clone, Copy)]
struct Silu;

impl CustomOp1 for Silu {
    fn name(&self) -> &'static str {
        "silu"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = dispatch!(OP, x.dtype(), cpu::forward(x, xl))?;
        Ok((y, xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, x: &crate::candle::CudaStorage, xl: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        let y = dispatch!(OP, x.dtype(), cuda::forward(x, xl))?;
        Ok((y, xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&dy.contiguous()?, &SiluGrad)?))
    }
}

/// The backward op: arguments `(x, dy)`, result `dx = dy * s * (1 + x * (1 - s))` in `x`'s dtype.
#[derive(Debug, Clone, Copy)]
struct SiluGrad;

impl SiluGrad {
    /// Checks the arguments: the same dtype and shape, contiguous.
    fn check(x: (DType, &Layout), dy: (DType, &Layout)) -> Result<()> {
        check_arg(OP, "x", x.0, x.1, x.0, x.1.dims())?;
        check_arg(OP, "dy", dy.0, dy.1, x.0, x.1.dims())
    }
}

impl CustomOp2 for SiluGrad {
    fn name(&self) -> &'static str {
        "silu-grad"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, dy: &CpuStorage, dyl: &Layout) -> Result<(CpuStorage, Shape)> {
        Self::check((x.dtype(), xl), (dy.dtype(), dyl))?;
        let dx = dispatch!(OP, x.dtype(), cpu::backward((x, xl), (dy, dyl)))?;
        Ok((dx, xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &crate::candle::CudaStorage,
        xl: &Layout,
        dy: &crate::candle::CudaStorage,
        dyl: &Layout,
    ) -> Result<(crate::candle::CudaStorage, Shape)> {
        Self::check((x.dtype(), xl), (dy.dtype(), dyl))?;
        let dx = dispatch!(OP, x.dtype(), cuda::backward((x, xl), (dy, dyl)))?;
        Ok((dx, xl.shape().clone()))
    }
}

/// The CPU loops: the expressions of `silu_op.cu` and `sigmoid.cu` in `f32` (`f64` for `f64`).
pub(super) mod cpu {
    use std::ops::{Add, Div, Mul, Sub};

    use super::OP;
    use crate::candle::{CpuStorage, Layout, Result, WithDType};
    use crate::ops::custom_op::cpu_slice;

    /// The arithmetic types, `f32` and `f64`.
    pub(in crate::ops) trait Real: Copy + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> {
        /// Zero.
        const ZERO: Self;
        /// One.
        const ONE: Self;
        /// `e^self`.
        fn exp(self) -> Self;
    }

    macro_rules! real {
        ($t:ty) => {
            impl Real for $t {
                const ZERO: Self = 0.0;
                const ONE: Self = 1.0;
                fn exp(self) -> Self {
                    <$t>::exp(self)
                }
            }
        };
    }
    real!(f32);
    real!(f64);

    /// A storage type and the type its values are computed in.
    pub(super) trait Elem: WithDType {
        /// `f32`, or `f64` for `f64`.
        type Acc: Real;
        /// The value in the arithmetic type (exact).
        fn to_acc(self) -> Self::Acc;
        /// An arithmetic value rounded (to nearest even) to the storage type.
        fn from_acc(v: Self::Acc) -> Self;
    }

    macro_rules! elem {
        ($t:ty, $acc:ty, $to:expr, $from:expr) => {
            impl Elem for $t {
                type Acc = $acc;
                fn to_acc(self) -> $acc {
                    $to(self)
                }
                fn from_acc(v: $acc) -> Self {
                    $from(v)
                }
            }
        };
    }
    elem!(f32, f32, |v| v, |v| v);
    elem!(f64, f64, |v| v, |v| v);
    elem!(half::bf16, f32, half::bf16::to_f32, half::bf16::from_f32);
    elem!(half::f16, f32, half::f16::to_f32, half::f16::from_f32);

    /// `sigmoid(v)` from `e = exp(-|v|) <= 1`: `1 / (1 + e)` for `v >= 0`, `e / (1 + e)` below.
    pub(in crate::ops) fn sigmoid<A: Real>(v: A) -> A {
        let neg = v < A::ZERO;
        let e = if neg { v } else { A::ZERO - v }.exp();
        (if neg { e } else { A::ONE }) / (A::ONE + e)
    }

    /// `d/dv silu(v) = s * (1 + v * (1 - s))`, `s = sigmoid(v)`.
    pub(in crate::ops) fn silu_slope<A: Real>(v: A) -> A {
        let s = sigmoid(v);
        s * (A::ONE + v * (A::ONE - s))
    }

    /// `y = x * sigmoid(x)`.
    pub(super) fn forward<T: Elem>(x: &CpuStorage, xl: &Layout) -> Result<CpuStorage> {
        let x = cpu_slice::<T>(x, xl, OP)?;
        let y = x.iter().map(|&v| {
            let v = v.to_acc();
            T::from_acc(v * sigmoid(v))
        });
        Ok(T::to_cpu_storage_owned(y.collect()))
    }

    /// `dx = dy * s * (1 + x * (1 - s))`, `s = sigmoid(x)`.
    pub(super) fn backward<T: Elem>(x: (&CpuStorage, &Layout), dy: (&CpuStorage, &Layout)) -> Result<CpuStorage> {
        let (x, dy) = (cpu_slice::<T>(x.0, x.1, OP)?, cpu_slice::<T>(dy.0, dy.1, OP)?);
        let dx = x.iter().zip(dy).map(|(&v, &g)| T::from_acc(g.to_acc() * silu_slope(v.to_acc())));
        Ok(T::to_cpu_storage_owned(dx.collect()))
    }
}

/// The CUDA passes: the kernels of `silu_op.cu` (after `sigmoid.cu`), 256 threads a block in grid-stride loops.
#[cfg(feature = "cuda")]
mod cuda {
    use super::OP;
    use crate::candle::backend::BackendStorage;
    use crate::candle::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
    use crate::candle::cuda_backend::{CudaStorage, WrapErr};
    use crate::candle::{Layout, Result};
    use crate::ops::custom_op::cuda::{view, Elem, Kernels};

    /// The kernels, loaded as `boot_silu`.
    static KERNELS: Kernels = Kernels::new("boot_silu", "sigmoid.cu + silu_op.cu", concat!(include_str!("sigmoid.cu"), include_str!("silu_op.cu")));
    /// Threads of a block.
    const THREADS: usize = 256;
    /// Blocks of a launch at most (larger tensors loop: 16.8M threads cover every current GPU many times).
    const MAX_BLOCKS: usize = 1 << 16;

    /// Blocks of [`THREADS`] for `n` elements of `T`, a thread per 16-byte vector of them (the kernels' vector
    /// loops; at least one block, at most [`MAX_BLOCKS`]).
    fn config<T>(n: usize) -> LaunchConfig {
        let blocks = n.div_ceil(16 / std::mem::size_of::<T>()).div_ceil(THREADS).clamp(1, MAX_BLOCKS);
        LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (THREADS as u32, 1, 1), shared_mem_bytes: 0 }
    }

    /// `y = x * sigmoid(x)`.
    pub(super) fn forward<T: Elem>(x: &CudaStorage, xl: &Layout) -> Result<CudaStorage> {
        let dev = x.device();
        let stream = dev.cuda_stream();
        let xv = view::<T>(x, xl, OP)?;
        let n = xv.len();
        // SAFETY: every element is written by the kernel.
        let y = unsafe { dev.alloc::<T>(n)? };
        let f = KERNELS.func(dev, &format!("silu_forward_{}", T::SUFFIX))?;
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&y).arg(&n);
        // SAFETY: argument types and order match the kernel; the grid-stride loop stops at `n`.
        unsafe { launch.launch(config::<T>(n)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
    }

    /// `dx = dy * s * (1 + x * (1 - s))`, `s = sigmoid(x)`.
    pub(super) fn backward<T: Elem>(x: (&CudaStorage, &Layout), dy: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
        let dev = x.0.device();
        let stream = dev.cuda_stream();
        let (xv, dyv) = (view::<T>(x.0, x.1, OP)?, view::<T>(dy.0, dy.1, OP)?);
        let n = xv.len();
        // SAFETY: every element is written by the kernel.
        let dx = unsafe { dev.alloc::<T>(n)? };
        let f = KERNELS.func(dev, &format!("silu_backward_{}", T::SUFFIX))?;
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&dyv).arg(&dx).arg(&n);
        // SAFETY: argument types and order match the kernel (`dy` has `n` elements too, checked by the op);
        // the grid-stride loop stops at `n`.
        unsafe { launch.launch(config::<T>(n)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(dx, dev.clone()))
    }
}
