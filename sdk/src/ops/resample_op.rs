//! 2x nearest up-sampling and 2x2 average pooling of `[B, C, H, W]` maps as custom ops with one kernel a
//! direction, each op's backward one more op: the adjoint of "spread each element, times `s`, over a 2x2
//! block" is "sum each 2x2 block, times `s`", so two kernels make all four passes:
//!
//! | op | forward | backward |
//! |---|---|---|
//! | [`upsample_nearest2x`] | spread, `s = 1` | gather (block sum), `s = 1` |
//! | [`avg_pool2x`] | gather, `s = 1/4` | spread, `s = 1/4` |
//!
//! candle's strided-copy up-sampling (a reshape / broadcast / reshape) and its backward (a sum over two
//! broadcast dims) are several times slower on CUDA; its own `upsample_nearest2d` differentiates with one
//! convolution per channel.
//!
//! Storage dtypes `f32`, `f64`, `bf16`, `f16`; arithmetic in `f32` (`f64` for `f64`) on the CPU and on CUDA,
//! each result rounded once to the input's dtype (`s` is a power of two: spreading is exact, a block sum
//! rounds once). A block sums as `((top-left + top-right) + bottom-left) + bottom-right`, the order of
//! candle's `avg_pool2d`, so an `f32` pool equals candle's exactly. CUDA kernels: `resample_op.cu`, compiled
//! once per process with NVRTC.

use crate::candle::backend::BackendStorage;
use crate::candle::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use crate::ops::custom_op::dispatch;

/// 2x nearest up-sampling of `x` (`[B, C, H, W]`, any layout): `y[.., 2i + a, 2j + d] = x[.., i, j]`.
pub(super) fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Resample::Upsample)
}

/// 2x2 average pooling with stride 2 of `x` (`[B, C, H, W]`, even `H` and `W`, any layout).
pub(super) fn avg_pool2x(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Resample::AvgPool)
}

/// The two kernels: which side of the 2x resampling the argument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Small to big: each element, times the scale, fills its 2x2 block.
    Spread,
    /// Big to small: each 2x2 block's sum, times the scale.
    Gather,
}

/// The four passes, each a custom op on a contiguous `[B, C, H, W]` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resample {
    /// Nearest up-sampling.
    Upsample,
    /// Its gradient: the 2x2 block sums of `dy`.
    UpsampleGrad,
    /// Average pooling.
    AvgPool,
    /// Its gradient: `dy / 4` over each 2x2 block.
    AvgPoolGrad,
}

/// The small side of a resampling: `rows = B * C * h` rows of `w` elements (the big side is `[2 * rows,
/// 2 * w]`).
#[derive(Debug, Clone, Copy)]
struct Small {
    /// Rows of all maps together.
    rows: usize,
    /// Elements of a row.
    w: usize,
}

impl Small {
    /// Elements of the small side.
    fn len(self) -> usize {
        self.rows * self.w
    }
}

impl Resample {
    /// The kernel and its scale (a power of two).
    fn kernel(self) -> (Direction, f64) {
        match self {
            Self::Upsample => (Direction::Spread, 1.0),
            Self::UpsampleGrad => (Direction::Gather, 1.0),
            Self::AvgPool => (Direction::Gather, 0.25),
            Self::AvgPoolGrad => (Direction::Spread, 0.25),
        }
    }

    /// The pass that differentiates this one: its adjoint (same scale, the other direction).
    fn adjoint(self) -> Self {
        match self {
            Self::Upsample => Self::UpsampleGrad,
            Self::UpsampleGrad => Self::Upsample,
            Self::AvgPool => Self::AvgPoolGrad,
            Self::AvgPoolGrad => Self::AvgPool,
        }
    }

    /// The small side and the result's shape for an argument of layout `l`: 4-D, and for a gather even
    /// height and width.
    fn geometry(self, l: &Layout) -> Result<(Small, Shape)> {
        let &[b, c, h, w] = l.dims() else {
            bail!("{}: expected a [B, C, H, W] input, got shape {:?}", self.name(), l.dims());
        };
        Ok(match self.kernel().0 {
            Direction::Spread => (Small { rows: b * c * h, w }, Shape::from((b, c, 2 * h, 2 * w))),
            Direction::Gather => {
                if h % 2 != 0 || w % 2 != 0 {
                    bail!("{}: input shape {:?} has an odd height or width (2x2 blocks need both even)", self.name(), l.dims());
                }
                (Small { rows: b * c * (h / 2), w: w / 2 }, Shape::from((b, c, h / 2, w / 2)))
            }
        })
    }
}

impl CustomOp1 for Resample {
    fn name(&self) -> &'static str {
        match self {
            Self::Upsample => "upsample_nearest2x",
            Self::UpsampleGrad => "upsample_nearest2x-grad",
            Self::AvgPool => "avg_pool2x",
            Self::AvgPoolGrad => "avg_pool2x-grad",
        }
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (small, shape) = self.geometry(xl)?;
        let (direction, scale) = self.kernel();
        let y = dispatch!(self.name(), x.dtype(), cpu::resample(x, xl, self.name(), direction, small, scale))?;
        Ok((y, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, x: &crate::candle::CudaStorage, xl: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        let (small, shape) = self.geometry(xl)?;
        let (direction, scale) = self.kernel();
        let y = dispatch!(self.name(), x.dtype(), cuda::resample(x, xl, self.name(), direction, small, scale))?;
        Ok((y, shape))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&self.adjoint())?))
    }
}

/// The CPU loops: the expressions of `resample_op.cu`, in `f32` (`f64` for `f64`).
mod cpu {
    use super::{Direction, Small};
    use crate::candle::{CpuStorage, DType, Layout, Result, WithDType};
    use crate::ops::custom_op::cpu_slice;

    /// The pass `direction` with `scale` over the contiguous `x` of the op `op` (its geometry `small` from
    /// `xl`), in `f64` for `f64` storage, else in `f32`.
    pub(super) fn resample<T: WithDType>(x: &CpuStorage, xl: &Layout, op: &str, direction: Direction, small: Small, scale: f64) -> Result<CpuStorage> {
        let x = cpu_slice::<T>(x, xl, op)?;
        let y = match (T::DTYPE, direction) {
            (DType::F64, Direction::Spread) => spread::<T, f64>(x, small, scale),
            (DType::F64, Direction::Gather) => gather::<T, f64>(x, small, scale),
            (_, Direction::Spread) => spread::<T, f32>(x, small, scale),
            (_, Direction::Gather) => gather::<T, f32>(x, small, scale),
        };
        Ok(T::to_cpu_storage_owned(y))
    }

    /// `x` (storage, exact in `A`) in the arithmetic type `A`.
    fn acc<T: WithDType, A: WithDType>(v: T) -> A {
        A::from_f64(v.to_f64())
    }

    /// `v` rounded once to the storage type (`A -> f64` is exact).
    fn round<T: WithDType, A: WithDType>(v: A) -> T {
        T::from_f64(v.to_f64())
    }

    /// Each element of the small side `x`, times `scale`, over its 2x2 block of the result.
    fn spread<T: WithDType, A: WithDType>(x: &[T], small: Small, scale: f64) -> Vec<T> {
        let (s, w) = (A::from_f64(scale), small.w);
        let mut y = vec![T::zero(); 4 * small.len()];
        // `w.max(1)`: a map of width 0 has no rows to walk (and `chunks_exact` no chunks of 0).
        for (x_row, y_rows) in x.chunks_exact(w.max(1)).zip(y.chunks_exact_mut(4 * w.max(1))) {
            let (top, bottom) = y_rows.split_at_mut(2 * w);
            for (j, &v) in x_row.iter().enumerate() {
                let v: T = round(acc::<T, A>(v) * s);
                top[2 * j..2 * j + 2].fill(v);
                bottom[2 * j..2 * j + 2].fill(v);
            }
        }
        y
    }

    /// Each 2x2 block of the big side `x`, summed in `A` in candle's `avg_pool2d` order, times `scale`.
    fn gather<T: WithDType, A: WithDType>(x: &[T], small: Small, scale: f64) -> Vec<T> {
        let (s, w) = (A::from_f64(scale), small.w);
        let mut y = Vec::with_capacity(small.len());
        for x_rows in x.chunks_exact(4 * w.max(1)) {
            let (top, bottom) = x_rows.split_at(2 * w);
            y.extend((0..w).map(|j| {
                let (t, b) = (&top[2 * j..], &bottom[2 * j..]);
                let sum = acc::<T, A>(t[0]) + acc(t[1]) + acc(b[0]) + acc(b[1]);
                round::<T, A>(sum * s)
            }));
        }
        y
    }
}

/// The CUDA passes: the kernels of `resample_op.cu`, 256 threads a block in grid-stride loops over the small
/// side.
#[cfg(feature = "cuda")]
mod cuda {
    use super::{Direction, Small};
    use crate::candle::backend::BackendStorage;
    use crate::candle::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
    use crate::candle::cuda_backend::{CudaStorage, WrapErr};
    use crate::candle::{Layout, Result, WithDType};
    use crate::ops::custom_op::cuda::{view, Elem, Kernels};

    /// The kernels, loaded as `boot_resample`.
    static KERNELS: Kernels = Kernels::new("boot_resample", "resample_op.cu", include_str!("resample_op.cu"));
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

    /// The pass `direction` with `scale` over the contiguous `x` of the op `op`.
    pub(super) fn resample<T: Elem>(x: &CudaStorage, xl: &Layout, op: &str, direction: Direction, small: Small, scale: f64) -> Result<CudaStorage> {
        let dev = x.device();
        let stream = dev.cuda_stream();
        let xv = view::<T>(x, xl, op)?;
        let (n, w) = (small.len(), small.w);
        let (kernel, y_len) = match direction {
            Direction::Spread => ("spread", 4 * n),
            Direction::Gather => ("gather", n),
        };
        // SAFETY: every element is written by the kernel.
        let y = unsafe { dev.alloc::<T>(y_len)? };
        let f = KERNELS.func(dev, &format!("resample_{kernel}_{}", T::SUFFIX))?;
        let scale = T::Acc::from_f64(scale);
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&y).arg(&n).arg(&w).arg(&scale);
        // SAFETY: argument types and order match the kernel; `x` holds its side's elements (`small` is derived
        // from its layout) and `y` the other side's; the grid-stride loop stops at `n`.
        unsafe { launch.launch(config::<T>(n)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
    }
}
