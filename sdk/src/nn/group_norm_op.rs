//! Fused group normalisation over `[B, C, *spatial]`: one custom op computes
//! `y = (x - mean) * rstd * weight[c] + bias[c]` (statistics per sample and group of `C / G` channels, biased
//! variance, `rstd = 1 / sqrt(var + eps)`), and its backward is three no-grad ops that read `x` and `dy` twice
//! in all: per-(sample, channel) sums, the input gradient, the weight and bias gradients.
//!
//! Storage dtypes `f32`, `f64`, `bf16`, `f16`; arithmetic is in `f32` (`f64` for `f64` inputs) on CUDA and in
//! `f64` on the CPU, and the outputs are rounded once to the input's dtype. CUDA kernels: `group_norm_op.cu`,
//! compiled once per process with NVRTC.
//!
//! Statistics are computed from sums of `d = x - k`, `k` the first element of the group in the sample (see
//! `group_norm_op.cu`); the backward passes the sums from one op to the next in a flat tensor of the
//! accumulation dtype (`f32`, or `f64` for `f64` inputs): per (sample, channel) the sums of `d`, `d^2`, `dy`,
//! `dy * d` (`[B, C, 4]`), then the weight (`[C]`).

use crate::candle::backend::BackendStorage;
use crate::candle::{bail, CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor};
use crate::nn::custom_op::{cpu_slice, dispatch};

/// The op name of error messages.
const OP: &str = "group norm";

/// Group norm of `x` (`[B, C, ..]`, rank >= 2) with `num_groups` groups and per-channel `weight` and `bias`
/// (`[C]`, any float dtype: they are cast to the accumulation dtype, and their gradients flow back through
/// the cast). The result has `x`'s dtype.
pub(crate) fn group_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, num_groups: usize, eps: f64) -> Result<Tensor> {
    let acc = acc_dtype(x.dtype())?;
    let weight = weight.to_dtype(acc)?.contiguous()?;
    let bias = bias.to_dtype(acc)?.contiguous()?;
    x.contiguous()?.apply_op3(&weight, &bias, GroupNormOp { num_groups, eps })
}

/// The dtype the statistics and the parameter tensors are in: `f64` for `f64` inputs, else `f32`.
fn acc_dtype(dtype: DType) -> Result<DType> {
    match dtype {
        DType::F64 => Ok(DType::F64),
        DType::F32 | DType::BF16 | DType::F16 => Ok(DType::F32),
        d => bail!("group norm: unsupported dtype {d:?} (expected f32, f64, bf16 or f16)"),
    }
}

/// Sizes of `x`: batch, channels, channels per group, spatial positions per channel.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    channels: usize,
    per_group: usize,
    spatial: usize,
}

impl Dims {
    /// The sizes of an input of `shape` split into `num_groups` groups (an error for an empty input).
    fn of(shape: &Shape, num_groups: usize) -> Result<Self> {
        let dims = shape.dims();
        if dims.len() < 2 {
            bail!("group norm: input of shape {shape:?}, expected [B, C, ..]");
        }
        let (batch, channels) = (dims[0], dims[1]);
        if num_groups == 0 || !channels.is_multiple_of(num_groups) {
            bail!("group norm: {channels} channels cannot be split into {num_groups} groups");
        }
        let spatial = dims[2..].iter().product::<usize>();
        if batch * channels * spatial == 0 {
            bail!("group norm: empty input of shape {shape:?}");
        }
        Ok(Self { batch, channels, per_group: channels / num_groups, spatial })
    }

    /// Number of groups.
    fn groups(&self) -> usize {
        self.channels / self.per_group
    }

    /// Elements of one (sample, group).
    fn group_len(&self) -> usize {
        self.per_group * self.spatial
    }

    /// Elements of `x`.
    fn len(&self) -> usize {
        self.batch * self.channels * self.spatial
    }

    /// Length of the backward sums: `[B, C, 4]` then the weight `[C]`.
    fn sums_len(&self) -> usize {
        self.batch * self.channels * 4 + self.channels
    }
}

/// Checks that an argument has `dtype`, `shape` and a contiguous layout.
fn check_arg(op: &str, what: &str, got: DType, layout: &Layout, dtype: DType, shape: &[usize]) -> Result<()> {
    if got != dtype {
        bail!("{op}: {what} is {got:?}, expected {dtype:?}");
    }
    if layout.dims() != shape {
        bail!("{op}: {what} has shape {:?}, expected {shape:?}", layout.dims());
    }
    if !layout.is_contiguous() {
        bail!("{op}: {what} must be contiguous (call .contiguous() first)");
    }
    Ok(())
}

/// The forward op: arguments `(x, weight, bias)`, `weight` and `bias` `[C]` in the accumulation dtype.
#[derive(Debug, Clone, Copy)]
struct GroupNormOp {
    num_groups: usize,
    eps: f64,
}

impl GroupNormOp {
    /// Checks the arguments (dtypes, shapes, contiguity) and returns the input's sizes.
    fn check(&self, x: (DType, &Layout), w: (DType, &Layout), b: (DType, &Layout)) -> Result<Dims> {
        let name = self.name();
        let d = Dims::of(x.1.shape(), self.num_groups)?;
        let acc = acc_dtype(x.0)?;
        check_arg(name, "x", x.0, x.1, x.0, x.1.dims())?;
        check_arg(name, "weight", w.0, w.1, acc, &[d.channels])?;
        check_arg(name, "bias", b.0, b.1, acc, &[d.channels])?;
        Ok(d)
    }
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        "group-norm"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout, b: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (w.dtype(), wl), (b.dtype(), bl))?;
        let (w, b) = (cpu_acc(w, wl)?, cpu_acc(b, bl)?);
        let y = dispatch!(OP, x.dtype(), cpu::forward(x, xl, &w, &b, d, self.eps))?;
        Ok((y, xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &crate::candle::CudaStorage,
        xl: &Layout,
        w: &crate::candle::CudaStorage,
        wl: &Layout,
        b: &crate::candle::CudaStorage,
        bl: &Layout,
    ) -> Result<(crate::candle::CudaStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (w.dtype(), wl), (b.dtype(), bl))?;
        let y = dispatch!(OP, x.dtype(), cuda::forward((x, xl), (w, wl), (b, bl), d, self.eps))?;
        Ok((y, xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = Dims::of(x.shape(), self.num_groups)?;
        let dy = dy.contiguous()?;
        let sums = x.apply_op3_no_bwd(&dy, w, &GradSums { num_groups: self.num_groups })?;
        let dx = x.apply_op3_no_bwd(&dy, &sums, &GradInput { num_groups: self.num_groups, eps: self.eps })?;
        let dw_db = sums.apply_op1_no_bwd(&GradParams { dims, eps: self.eps })?;
        Ok((Some(dx), Some(dw_db.get(0)?), Some(dw_db.get(1)?)))
    }
}

/// Backward, first pass: arguments `(x, dy, weight)`; result the sums `[B * C * 4 + C]` (module docs).
#[derive(Debug, Clone, Copy)]
struct GradSums {
    num_groups: usize,
}

impl GradSums {
    /// Checks the arguments (dtypes, shapes, contiguity) and returns the input's sizes.
    fn check(&self, x: (DType, &Layout), dy: (DType, &Layout), w: (DType, &Layout)) -> Result<Dims> {
        let name = self.name();
        let d = Dims::of(x.1.shape(), self.num_groups)?;
        check_arg(name, "x", x.0, x.1, x.0, x.1.dims())?;
        check_arg(name, "dy", dy.0, dy.1, x.0, x.1.dims())?;
        check_arg(name, "weight", w.0, w.1, acc_dtype(x.0)?, &[d.channels])?;
        Ok(d)
    }
}

impl CustomOp3 for GradSums {
    fn name(&self) -> &'static str {
        "group-norm-grad-sums"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, dy: &CpuStorage, dyl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (dy.dtype(), dyl), (w.dtype(), wl))?;
        let w = cpu_acc(w, wl)?;
        let sums = dispatch!(OP, x.dtype(), cpu::grad_sums((x, xl), (dy, dyl), &w, d))?;
        Ok((acc_storage(sums, acc_dtype(x.dtype())?), Shape::from(d.sums_len())))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &crate::candle::CudaStorage,
        xl: &Layout,
        dy: &crate::candle::CudaStorage,
        dyl: &Layout,
        w: &crate::candle::CudaStorage,
        wl: &Layout,
    ) -> Result<(crate::candle::CudaStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (dy.dtype(), dyl), (w.dtype(), wl))?;
        let sums = dispatch!(OP, x.dtype(), cuda::grad_sums((x, xl), (dy, dyl), (w, wl), d))?;
        Ok((sums, Shape::from(d.sums_len())))
    }
}

/// Backward, input gradient: arguments `(x, dy, sums)`; result `dx` in `x`'s dtype.
#[derive(Debug, Clone, Copy)]
struct GradInput {
    num_groups: usize,
    eps: f64,
}

impl GradInput {
    /// Checks the arguments (dtypes, shapes, contiguity) and returns the input's sizes.
    fn check(&self, x: (DType, &Layout), dy: (DType, &Layout), sums: (DType, &Layout)) -> Result<Dims> {
        let name = self.name();
        let d = Dims::of(x.1.shape(), self.num_groups)?;
        check_arg(name, "x", x.0, x.1, x.0, x.1.dims())?;
        check_arg(name, "dy", dy.0, dy.1, x.0, x.1.dims())?;
        check_arg(name, "sums", sums.0, sums.1, acc_dtype(x.0)?, &[d.sums_len()])?;
        Ok(d)
    }
}

impl CustomOp3 for GradInput {
    fn name(&self) -> &'static str {
        "group-norm-grad-input"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, dy: &CpuStorage, dyl: &Layout, s: &CpuStorage, sl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (dy.dtype(), dyl), (s.dtype(), sl))?;
        let sums = cpu_acc(s, sl)?;
        let dx = dispatch!(OP, x.dtype(), cpu::grad_input((x, xl), (dy, dyl), &sums, d, self.eps))?;
        Ok((dx, xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &crate::candle::CudaStorage,
        xl: &Layout,
        dy: &crate::candle::CudaStorage,
        dyl: &Layout,
        s: &crate::candle::CudaStorage,
        sl: &Layout,
    ) -> Result<(crate::candle::CudaStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (dy.dtype(), dyl), (s.dtype(), sl))?;
        let dx = dispatch!(OP, x.dtype(), cuda::grad_input((x, xl), (dy, dyl), (s, sl), d, self.eps))?;
        Ok((dx, xl.shape().clone()))
    }
}

/// Backward, parameter gradients: argument the sums; result `[2, C]` (`dweight; dbias`) in their dtype.
#[derive(Debug, Clone, Copy)]
struct GradParams {
    dims: Dims,
    eps: f64,
}

impl GradParams {
    /// Checks the sums (`f32` or `f64`, of the length `dims` gives, contiguous).
    fn check(&self, s: (DType, &Layout)) -> Result<()> {
        if !matches!(s.0, DType::F32 | DType::F64) {
            bail!("{}: sums are {:?}, expected f32 or f64", self.name(), s.0);
        }
        check_arg(self.name(), "sums", s.0, s.1, s.0, &[self.dims.sums_len()])
    }
}

impl CustomOp1 for GradParams {
    fn name(&self) -> &'static str {
        "group-norm-grad-params"
    }

    fn cpu_fwd(&self, s: &CpuStorage, sl: &Layout) -> Result<(CpuStorage, Shape)> {
        self.check((s.dtype(), sl))?;
        let grads = cpu::grad_params(&cpu_acc(s, sl)?, self.dims, self.eps);
        Ok((acc_storage(grads, s.dtype()), Shape::from((2, self.dims.channels))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &crate::candle::CudaStorage, sl: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        self.check((s.dtype(), sl))?;
        let grads = match s.dtype() {
            DType::F64 => cuda::grad_params::<f64>((s, sl), self.dims, self.eps)?,
            _ => cuda::grad_params::<f32>((s, sl), self.dims, self.eps)?,
        };
        Ok((grads, Shape::from((2, self.dims.channels))))
    }
}

/// An `f32` or `f64` CPU argument as `f64` values.
fn cpu_acc(s: &CpuStorage, l: &Layout) -> Result<Vec<f64>> {
    match s.dtype() {
        DType::F32 => Ok(cpu_slice::<f32>(s, l, OP)?.iter().map(|&v| f64::from(v)).collect()),
        DType::F64 => Ok(cpu_slice::<f64>(s, l, OP)?.to_vec()),
        d => bail!("group norm: internal argument is {d:?}, expected f32 or f64"),
    }
}

/// `values` stored in `dtype` (`f32` or `f64`).
fn acc_storage(values: Vec<f64>, dtype: DType) -> CpuStorage {
    match dtype {
        DType::F64 => CpuStorage::F64(values),
        _ => CpuStorage::F32(values.into_iter().map(|v| v as f32).collect()),
    }
}

/// The CPU passes, in `f64`.
mod cpu {
    use super::{cpu_slice, Dims, OP};
    use crate::candle::{bail, CpuStorage, Layout, Result, WithDType};

    /// Checks that `x` and `dy` have the elements of `d`.
    fn check_len<T>(x: &[T], dy: &[T], d: Dims) -> Result<()> {
        if x.len() != d.len() || dy.len() != d.len() {
            bail!("group norm: x has {} elements and dy {}, expected {}", x.len(), dy.len(), d.len());
        }
        Ok(())
    }

    /// `y` of the forward op: two passes per group (mean, then the centred variance).
    pub(super) fn forward<T: WithDType>(x: &CpuStorage, xl: &Layout, w: &[f64], b: &[f64], d: Dims, eps: f64) -> Result<CpuStorage> {
        let x = cpu_slice::<T>(x, xl, OP)?;
        let mut y = Vec::with_capacity(x.len());
        for (i, group) in x.chunks_exact(d.group_len()).enumerate() {
            let n = group.len() as f64;
            let mean = group.iter().map(|v| v.to_f64()).sum::<f64>() / n;
            let var = group.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
            let rstd = 1.0 / (var + eps).sqrt();
            let c0 = (i % d.groups()) * d.per_group;
            for (j, channel) in group.chunks_exact(d.spatial).enumerate() {
                let (scale, shift) = (rstd * w[c0 + j], b[c0 + j]);
                y.extend(channel.iter().map(|v| T::from_f64((v.to_f64() - mean) * scale + shift)));
            }
        }
        Ok(T::to_cpu_storage_owned(y))
    }

    /// The backward sums (module docs of the parent).
    pub(super) fn grad_sums<T: WithDType>(x: (&CpuStorage, &Layout), dy: (&CpuStorage, &Layout), w: &[f64], d: Dims) -> Result<Vec<f64>> {
        let (x, dy) = (cpu_slice::<T>(x.0, x.1, OP)?, cpu_slice::<T>(dy.0, dy.1, OP)?);
        check_len(x, dy, d)?;
        let mut sums = Vec::with_capacity(d.sums_len());
        for (xg, dyg) in x.chunks_exact(d.group_len()).zip(dy.chunks_exact(d.group_len())) {
            let k = xg[0].to_f64();
            for (xc, dyc) in xg.chunks_exact(d.spatial).zip(dyg.chunks_exact(d.spatial)) {
                let mut s = [0f64; 4];
                for (&xv, &e) in xc.iter().zip(dyc) {
                    let (v, e) = (xv.to_f64() - k, e.to_f64());
                    s[0] += v;
                    s[1] += v * v;
                    s[2] += e;
                    s[3] += e * v;
                }
                sums.extend(s);
            }
        }
        sums.extend_from_slice(w);
        Ok(sums)
    }

    /// Group `(b, g)` from the backward sums: `(m1, rstd)` (`m1` the mean of `x - k`).
    fn stats(sums: &[f64], d: Dims, b: usize, g: usize, eps: f64) -> (f64, f64) {
        let first = (b * d.channels + g * d.per_group) * 4;
        let channels = sums[first..first + d.per_group * 4].chunks_exact(4);
        let (s1, s2) = channels.fold((0.0, 0.0), |(s1, s2), c| (s1 + c[0], s2 + c[1]));
        let n = d.group_len() as f64;
        let m1 = s1 / n;
        let var = (s2 / n - m1 * m1).max(0.0);
        (m1, 1.0 / (var + eps).sqrt())
    }

    /// `dx = rstd * (w * dy - mean(w * dy) - xhat * mean(w * dy * xhat))` per group.
    pub(super) fn grad_input<T: WithDType>(
        x: (&CpuStorage, &Layout),
        dy: (&CpuStorage, &Layout),
        sums: &[f64],
        d: Dims,
        eps: f64,
    ) -> Result<CpuStorage> {
        let (x, dy) = (cpu_slice::<T>(x.0, x.1, OP)?, cpu_slice::<T>(dy.0, dy.1, OP)?);
        check_len(x, dy, d)?;
        let w = &sums[d.batch * d.channels * 4..];
        let n = d.group_len() as f64;
        let mut dx = Vec::with_capacity(x.len());
        for (i, (xg, dyg)) in x.chunks_exact(d.group_len()).zip(dy.chunks_exact(d.group_len())).enumerate() {
            let (b, g) = (i / d.groups(), i % d.groups());
            let (m1, rstd) = stats(sums, d, b, g, eps);
            let c0 = g * d.per_group;
            let (mut sg, mut sgd) = (0.0, 0.0);
            for j in 0..d.per_group {
                let s = &sums[(b * d.channels + c0 + j) * 4..][..4];
                sg += w[c0 + j] * s[2];
                sgd += w[c0 + j] * s[3];
            }
            let mean_g = rstd * sg / n;
            let mean_gx = rstd * rstd * (sgd - m1 * sg) / n;
            let k = xg[0].to_f64();
            for (j, (xc, dyc)) in xg.chunks_exact(d.spatial).zip(dyg.chunks_exact(d.spatial)).enumerate() {
                let a = rstd * w[c0 + j];
                dx.extend(xc.iter().zip(dyc).map(|(&xv, &e)| {
                    let xhat = ((xv.to_f64() - k) - m1) * rstd;
                    T::from_f64(a * e.to_f64() - mean_g - xhat * mean_gx)
                }));
            }
        }
        Ok(T::to_cpu_storage_owned(dx))
    }

    /// `[dw; db]` (`2 * C` values): `dw[c] = sum dy * xhat`, `db[c] = sum dy` over samples and positions.
    pub(super) fn grad_params(sums: &[f64], d: Dims, eps: f64) -> Vec<f64> {
        let mut out = vec![0.0; 2 * d.channels];
        for b in 0..d.batch {
            for g in 0..d.groups() {
                let (m1, rstd) = stats(sums, d, b, g, eps);
                for c in g * d.per_group..(g + 1) * d.per_group {
                    let s = &sums[(b * d.channels + c) * 4..][..4];
                    out[c] += rstd * (s[3] - m1 * s[2]);
                    out[d.channels + c] += s[2];
                }
            }
        }
        out
    }
}

/// The CUDA passes: the kernels of `group_norm_op.cu`, one block per (sample, channel).
#[cfg(feature = "cuda")]
mod cuda {
    use super::{Dims, OP};
    use crate::candle::backend::BackendStorage;
    use crate::candle::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
    use crate::candle::cuda_backend::{CudaDType, CudaStorage, WrapErr};
    use crate::candle::{Error, Layout, Result, WithDType};
    use crate::nn::custom_op::cuda::{view, Elem, Kernels};

    /// The kernels, loaded as `boot_group_norm`.
    static KERNELS: Kernels = Kernels::new("boot_group_norm", "group_norm_op.cu", include_str!("group_norm_op.cu"));
    /// Threads of the per-channel blocks at most, and of the parameter-gradient blocks.
    const MAX_THREADS: usize = 256;

    /// `v` as a kernel's `int`.
    fn int(v: usize, what: &str) -> Result<i32> {
        i32::try_from(v).map_err(|_| Error::Msg(format!("{OP}: {what} = {v} does not fit the kernels' 32-bit ints")).bt())
    }

    /// `(C, C / G, S)` as kernel ints, checking that the grid of `B * C` blocks fits too.
    fn sizes(d: Dims) -> Result<(i32, i32, i32)> {
        int(d.batch * d.channels, "batch * channels")?;
        Ok((int(d.channels, "channels")?, int(d.per_group, "channels per group")?, int(d.spatial, "spatial size")?))
    }

    /// One block per (sample, channel), a power of two of threads from 32 to [`MAX_THREADS`] for `S` positions.
    fn per_channel(d: Dims) -> LaunchConfig {
        let threads = d.spatial.next_power_of_two().clamp(32, MAX_THREADS);
        LaunchConfig { grid_dim: ((d.batch * d.channels) as u32, 1, 1), block_dim: (threads as u32, 1, 1), shared_mem_bytes: 0 }
    }

    /// The forward op: channel sums of `d`, `d^2`, then `y`.
    pub(super) fn forward<T: Elem>(
        x: (&CudaStorage, &Layout),
        w: (&CudaStorage, &Layout),
        b: (&CudaStorage, &Layout),
        d: Dims,
        eps: f64,
    ) -> Result<CudaStorage> {
        let dev = x.0.device();
        let stream = dev.cuda_stream();
        let (xv, wv, bv) = (view::<T>(x.0, x.1, OP)?, view::<T::Acc>(w.0, w.1, OP)?, view::<T::Acc>(b.0, b.1, OP)?);
        let (c, cpg, s) = sizes(d)?;
        let eps = T::Acc::from_f64(eps);
        // SAFETY: every element is written by the kernel (one per (sample, channel) block, two values each).
        let sums = unsafe { dev.alloc::<T::Acc>(d.batch * d.channels * 2)? };
        let f = KERNELS.func(dev, &format!("gn_sums_{}", T::SUFFIX))?;
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&sums).arg(&c).arg(&cpg).arg(&s);
        // SAFETY: argument types and order match the kernel; the grid covers [B * C] blocks of valid data.
        unsafe { launch.launch(per_channel(d)) }.w()?;
        // SAFETY: every element is written by the next kernel.
        let y = unsafe { dev.alloc::<T>(d.len())? };
        let f = KERNELS.func(dev, &format!("gn_forward_{}", T::SUFFIX))?;
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&sums).arg(&wv).arg(&bv).arg(&y).arg(&c).arg(&cpg).arg(&s).arg(&eps);
        // SAFETY: as above.
        unsafe { launch.launch(per_channel(d)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
    }

    /// The backward sums.
    pub(super) fn grad_sums<T: Elem>(
        x: (&CudaStorage, &Layout),
        dy: (&CudaStorage, &Layout),
        w: (&CudaStorage, &Layout),
        d: Dims,
    ) -> Result<CudaStorage> {
        let dev = x.0.device();
        let stream = dev.cuda_stream();
        let (xv, dyv, wv) = (view::<T>(x.0, x.1, OP)?, view::<T>(dy.0, dy.1, OP)?, view::<T::Acc>(w.0, w.1, OP)?);
        let (c, cpg, s) = sizes(d)?;
        // SAFETY: every element is written by the kernel (four per block, and the weight by sample 0's blocks).
        let sums = unsafe { dev.alloc::<T::Acc>(d.sums_len())? };
        let f = KERNELS.func(dev, &format!("gn_grad_sums_{}", T::SUFFIX))?;
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&dyv).arg(&wv).arg(&sums).arg(&c).arg(&cpg).arg(&s);
        // SAFETY: argument types and order match the kernel; the grid covers [B * C] blocks of valid data.
        unsafe { launch.launch(per_channel(d)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(sums, dev.clone()))
    }

    /// The input gradient.
    pub(super) fn grad_input<T: Elem>(
        x: (&CudaStorage, &Layout),
        dy: (&CudaStorage, &Layout),
        sums: (&CudaStorage, &Layout),
        d: Dims,
        eps: f64,
    ) -> Result<CudaStorage> {
        let dev = x.0.device();
        let stream = dev.cuda_stream();
        let (xv, dyv, sv) = (view::<T>(x.0, x.1, OP)?, view::<T>(dy.0, dy.1, OP)?, view::<T::Acc>(sums.0, sums.1, OP)?);
        let (c, cpg, s) = sizes(d)?;
        let eps = T::Acc::from_f64(eps);
        // SAFETY: every element is written by the kernel.
        let dx = unsafe { dev.alloc::<T>(d.len())? };
        let f = KERNELS.func(dev, &format!("gn_grad_input_{}", T::SUFFIX))?;
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&dyv).arg(&sv).arg(&dx).arg(&c).arg(&cpg).arg(&s).arg(&eps);
        // SAFETY: argument types and order match the kernel; the grid covers [B * C] blocks of valid data.
        unsafe { launch.launch(per_channel(d)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(dx, dev.clone()))
    }

    /// `[dw; db]` from the sums (`A` their dtype, `f32` or `f64`).
    pub(super) fn grad_params<A: CudaDType + DeviceRepr + WithDType>(sums: (&CudaStorage, &Layout), d: Dims, eps: f64) -> Result<CudaStorage> {
        let dev = sums.0.device();
        let stream = dev.cuda_stream();
        let sv = view::<A>(sums.0, sums.1, OP)?;
        let (c, cpg, s) = sizes(d)?;
        let batch = int(d.batch, "batch")?;
        let eps = A::from_f64(eps);
        let suffix = if A::DTYPE == crate::candle::DType::F64 { "f64" } else { "f32" };
        // SAFETY: every element is written by the kernel (one thread per channel writes two).
        let out = unsafe { dev.alloc::<A>(2 * d.channels)? };
        let f = KERNELS.func(dev, &format!("gn_grad_params_{suffix}"))?;
        let mut launch = stream.launch_builder(&f);
        launch.arg(&sv).arg(&out).arg(&batch).arg(&c).arg(&cpg).arg(&s).arg(&eps);
        let blocks = d.channels.div_ceil(MAX_THREADS) as u32;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (MAX_THREADS as u32, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: argument types and order match the kernel; threads past C return at once.
        unsafe { launch.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
    }
}
