//! Fused group normalisation over `[B, C, *spatial]` with an optional per-(sample, channel) modulation and
//! an optional SiLU: one custom op computes `y = act(z)`, `z = xhat * weight[c] * (1 + scale[b, c]) +
//! bias[c] * (1 + scale[b, c]) + shift[b, c]`, i.e. `act(group_norm(x) * (1 + scale) + shift)` (statistics
//! per sample and group of `C / G` channels, biased variance, `xhat = (x - mean) * rstd`,
//! `rstd = 1 / sqrt(var + eps)`; `scale = shift = 0` without modulation, `act` SiLU or the identity). Its
//! backward is three no-grad ops that read `x` and `dy` twice in all (`x` once more with SiLU, for the
//! statistics that the recomputed pre-activation `z` needs): per-(sample, channel) sums, the input
//! gradient, the parameter gradients.
//!
//! Storage dtypes `f32`, `f64`, `bf16`, `f16`; arithmetic is in `f32` (`f64` for `f64` inputs) on CUDA and in
//! `f64` on the CPU, and the outputs are rounded once to the input's dtype. CUDA kernels: `group_norm_op.cu`
//! (after `sigmoid.cu`), compiled once per process with NVRTC.
//!
//! The parameters travel as one flat tensor `p` of the accumulation dtype (`f32`, or `f64` for `f64` inputs):
//! `[weight (C); bias (C)]`, followed by `[scale (B * C); shift (B * C)]` when modulated; it is concatenated
//! with candle ops outside the op, so the gradient of `p` flows back to the original tensors.
//!
//! Statistics are computed from sums of `d = x - k`, `k` the first element of the group in the sample (see
//! `group_norm_op.cu`); the backward passes the sums from one op to the next in a flat tensor of the
//! accumulation dtype: per (sample, channel) the sums of `d`, `d^2`, `g`, `g * d` (`[B, C, 4]`,
//! `g = dy * act'(z)`), then `p`.

use crate::candle::backend::BackendStorage;
use crate::candle::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use crate::ops::custom_op::{check_arg, cpu_slice, dispatch};

/// The op name of error messages.
const OP: &str = "group norm";

/// `act(group_norm(x) * (1 + scale) + shift)` of `x` (`[B, C, ..]`, rank >= 2) with `num_groups` groups,
/// per-channel `weight` and `bias` (`[C]`) and, when given, `(scale, shift)` per sample and channel (each
/// `[B, C]`, `[1, C]`, `[B, C, 1, 1]` or `[1, C, 1, 1]`); `act` is SiLU when `silu`, else the identity. The
/// parameters may have any float dtype: they are cast to the accumulation dtype, and their gradients flow
/// back through the cast. The result has `x`'s dtype.
pub fn group_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    num_groups: usize,
    eps: f64,
    scale_shift: Option<(&Tensor, &Tensor)>,
    silu: bool,
) -> Result<Tensor> {
    let acc = acc_dtype(x.dtype())?;
    let (batch, channels) = match x.dims() {
        [b, c, ..] => (*b, *c),
        _ => bail!("{OP}: input of shape {:?}, expected [B, C, ..]", x.dims()),
    };
    for (what, t) in [("weight", weight), ("bias", bias)] {
        if t.dims() != [channels] {
            bail!("{OP}: {what} has shape {:?}, expected [{channels}]", t.dims());
        }
    }
    let mut params = vec![weight.to_dtype(acc)?, bias.to_dtype(acc)?];
    if let Some((scale, shift)) = scale_shift {
        for t in [scale, shift] {
            let per_sample = if t.rank() > 2 { t.flatten_from(1)? } else { t.clone() };
            params.push(per_sample.to_dtype(acc)?.broadcast_as((batch, channels))?.flatten_all()?);
        }
    }
    let p = Tensor::cat(&params, 0)?;
    let op = GroupNormOp { num_groups, eps, mode: Mode { modulated: scale_shift.is_some(), silu } };
    x.contiguous()?.apply_op2(&p, op)
}

/// The dtype the statistics and the parameter tensors are in: `f64` for `f64` inputs, else `f32`.
fn acc_dtype(dtype: DType) -> Result<DType> {
    match dtype {
        DType::F64 => Ok(DType::F64),
        DType::F32 | DType::BF16 | DType::F16 => Ok(DType::F32),
        d => bail!("{OP}: unsupported dtype {d:?} (expected f32, f64, bf16 or f16)"),
    }
}

/// What follows the normalisation.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// `* (1 + scale) + shift` per (sample, channel).
    modulated: bool,
    /// SiLU at the end.
    silu: bool,
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
            bail!("{OP}: input of shape {shape:?}, expected [B, C, ..]");
        }
        let (batch, channels) = (dims[0], dims[1]);
        if num_groups == 0 || !channels.is_multiple_of(num_groups) {
            bail!("{OP}: {channels} channels cannot be split into {num_groups} groups");
        }
        let spatial = dims[2..].iter().product::<usize>();
        if batch * channels * spatial == 0 {
            bail!("{OP}: empty input of shape {shape:?}");
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

    /// Length of the parameters `p`: `2 C`, plus `2 B C` when modulated.
    fn params_len(&self, mode: Mode) -> usize {
        2 * self.channels + if mode.modulated { 2 * self.batch * self.channels } else { 0 }
    }

    /// Length of the backward sums: `[B, C, 4]` then `p`.
    fn sums_len(&self, mode: Mode) -> usize {
        self.batch * self.channels * 4 + self.params_len(mode)
    }
}

/// The forward op: arguments `(x, p)`, `p` the flat parameters in the accumulation dtype.
#[derive(Debug, Clone, Copy)]
struct GroupNormOp {
    num_groups: usize,
    eps: f64,
    mode: Mode,
}

impl GroupNormOp {
    /// Checks the arguments (dtypes, shapes, contiguity) and returns the input's sizes.
    fn check(&self, x: (DType, &Layout), p: (DType, &Layout)) -> Result<Dims> {
        let name = self.name();
        let d = Dims::of(x.1.shape(), self.num_groups)?;
        check_arg(name, "x", x.0, x.1, x.0, x.1.dims())?;
        check_arg(name, "parameters", p.0, p.1, acc_dtype(x.0)?, &[d.params_len(self.mode)])?;
        Ok(d)
    }
}

impl CustomOp2 for GroupNormOp {
    fn name(&self) -> &'static str {
        "group-norm"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, p: &CpuStorage, pl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (p.dtype(), pl))?;
        let p = cpu_acc(p, pl)?;
        let y = dispatch!(OP, x.dtype(), cpu::forward(x, xl, &p, d, self.mode, self.eps))?;
        Ok((y, xl.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &crate::candle::CudaStorage,
        xl: &Layout,
        p: &crate::candle::CudaStorage,
        pl: &Layout,
    ) -> Result<(crate::candle::CudaStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (p.dtype(), pl))?;
        let y = dispatch!(OP, x.dtype(), cuda::forward((x, xl), (p, pl), d, self.mode, self.eps))?;
        Ok((y, xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, p: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dims = Dims::of(x.shape(), self.num_groups)?;
        let dy = dy.contiguous()?;
        let (num_groups, eps, mode) = (self.num_groups, self.eps, self.mode);
        let sums = x.apply_op3_no_bwd(&dy, p, &GradSums { num_groups, eps, mode })?;
        let dx = x.apply_op3_no_bwd(&dy, &sums, &GradInput { num_groups, eps, mode })?;
        let dp = sums.apply_op1_no_bwd(&GradParams { dims, eps, mode })?;
        Ok((Some(dx), Some(dp)))
    }
}

/// Backward, sums: arguments `(x, dy, p)`; result the flat sums (module docs) in the accumulation dtype.
#[derive(Debug, Clone, Copy)]
struct GradSums {
    num_groups: usize,
    eps: f64,
    mode: Mode,
}

impl GradSums {
    /// Checks the arguments (dtypes, shapes, contiguity) and returns the input's sizes.
    fn check(&self, x: (DType, &Layout), dy: (DType, &Layout), p: (DType, &Layout)) -> Result<Dims> {
        let name = self.name();
        let d = Dims::of(x.1.shape(), self.num_groups)?;
        check_arg(name, "x", x.0, x.1, x.0, x.1.dims())?;
        check_arg(name, "dy", dy.0, dy.1, x.0, x.1.dims())?;
        check_arg(name, "parameters", p.0, p.1, acc_dtype(x.0)?, &[d.params_len(self.mode)])?;
        Ok(d)
    }
}

impl CustomOp3 for GradSums {
    fn name(&self) -> &'static str {
        "group-norm-grad-sums"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, dy: &CpuStorage, dyl: &Layout, p: &CpuStorage, pl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (dy.dtype(), dyl), (p.dtype(), pl))?;
        let p = cpu_acc(p, pl)?;
        let sums = dispatch!(OP, x.dtype(), cpu::grad_sums((x, xl), (dy, dyl), &p, d, self.mode, self.eps))?;
        Ok((acc_storage(sums, acc_dtype(x.dtype())?), Shape::from(d.sums_len(self.mode))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &crate::candle::CudaStorage,
        xl: &Layout,
        dy: &crate::candle::CudaStorage,
        dyl: &Layout,
        p: &crate::candle::CudaStorage,
        pl: &Layout,
    ) -> Result<(crate::candle::CudaStorage, Shape)> {
        let d = self.check((x.dtype(), xl), (dy.dtype(), dyl), (p.dtype(), pl))?;
        let sums = dispatch!(OP, x.dtype(), cuda::grad_sums((x, xl), (dy, dyl), (p, pl), d, self.mode, self.eps))?;
        Ok((sums, Shape::from(d.sums_len(self.mode))))
    }
}

/// Backward, input gradient: arguments `(x, dy, sums)`; result `dx` in `x`'s dtype.
#[derive(Debug, Clone, Copy)]
struct GradInput {
    num_groups: usize,
    eps: f64,
    mode: Mode,
}

impl GradInput {
    /// Checks the arguments (dtypes, shapes, contiguity) and returns the input's sizes.
    fn check(&self, x: (DType, &Layout), dy: (DType, &Layout), sums: (DType, &Layout)) -> Result<Dims> {
        let name = self.name();
        let d = Dims::of(x.1.shape(), self.num_groups)?;
        check_arg(name, "x", x.0, x.1, x.0, x.1.dims())?;
        check_arg(name, "dy", dy.0, dy.1, x.0, x.1.dims())?;
        check_arg(name, "sums", sums.0, sums.1, acc_dtype(x.0)?, &[d.sums_len(self.mode)])?;
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
        let dx = dispatch!(OP, x.dtype(), cpu::grad_input((x, xl), (dy, dyl), &sums, d, self.mode, self.eps))?;
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
        let dx = dispatch!(OP, x.dtype(), cuda::grad_input((x, xl), (dy, dyl), (s, sl), d, self.mode, self.eps))?;
        Ok((dx, xl.shape().clone()))
    }
}

/// Backward, parameter gradients: argument the sums; result the gradient of `p` (its layout) in its dtype.
#[derive(Debug, Clone, Copy)]
struct GradParams {
    dims: Dims,
    eps: f64,
    mode: Mode,
}

impl GradParams {
    /// Checks the sums (`f32` or `f64`, of the length `dims` gives, contiguous).
    fn check(&self, s: (DType, &Layout)) -> Result<()> {
        if !matches!(s.0, DType::F32 | DType::F64) {
            bail!("{}: sums are {:?}, expected f32 or f64", self.name(), s.0);
        }
        check_arg(self.name(), "sums", s.0, s.1, s.0, &[self.dims.sums_len(self.mode)])
    }
}

impl CustomOp1 for GradParams {
    fn name(&self) -> &'static str {
        "group-norm-grad-params"
    }

    fn cpu_fwd(&self, s: &CpuStorage, sl: &Layout) -> Result<(CpuStorage, Shape)> {
        self.check((s.dtype(), sl))?;
        let grads = cpu::grad_params(&cpu_acc(s, sl)?, self.dims, self.mode, self.eps);
        Ok((acc_storage(grads, s.dtype()), Shape::from(self.dims.params_len(self.mode))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, s: &crate::candle::CudaStorage, sl: &Layout) -> Result<(crate::candle::CudaStorage, Shape)> {
        self.check((s.dtype(), sl))?;
        let grads = match s.dtype() {
            DType::F64 => cuda::grad_params::<f64>((s, sl), self.dims, self.mode, self.eps)?,
            _ => cuda::grad_params::<f32>((s, sl), self.dims, self.mode, self.eps)?,
        };
        Ok((grads, Shape::from(self.dims.params_len(self.mode))))
    }
}

/// An `f32` or `f64` CPU argument as `f64` values.
fn cpu_acc(s: &CpuStorage, l: &Layout) -> Result<Vec<f64>> {
    match s.dtype() {
        DType::F32 => Ok(cpu_slice::<f32>(s, l, OP)?.iter().map(|&v| f64::from(v)).collect()),
        DType::F64 => Ok(cpu_slice::<f64>(s, l, OP)?.to_vec()),
        d => bail!("{OP}: internal argument is {d:?}, expected f32 or f64"),
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
    use super::{cpu_slice, Dims, Mode, OP};
    use crate::candle::{bail, CpuStorage, Layout, Result, WithDType};
    use crate::ops::silu_op::cpu::{sigmoid, silu_slope};

    /// Checks that `x` and `dy` have the elements of `d`.
    fn check_len<T>(x: &[T], dy: &[T], d: Dims) -> Result<()> {
        if x.len() != d.len() || dy.len() != d.len() {
            bail!("{OP}: x has {} elements and dy {}, expected {}", x.len(), dy.len(), d.len());
        }
        Ok(())
    }

    /// `(mul, add)` of channel `c` of sample `b` from the parameters `p`: `z = xhat * mul + add`.
    fn coefficients(p: &[f64], d: Dims, mode: Mode, b: usize, c: usize) -> (f64, f64) {
        let (w, bias) = (p[c], p[d.channels + c]);
        if !mode.modulated {
            return (w, bias);
        }
        let i = 2 * d.channels + b * d.channels + c;
        let one_scale = 1.0 + p[i];
        (w * one_scale, bias * one_scale + p[i + d.batch * d.channels])
    }

    /// `(m1, rstd)` of a group of `n` elements from its sums of `d` and `d^2`.
    fn moments(s1: f64, s2: f64, n: f64, eps: f64) -> (f64, f64) {
        let m1 = s1 / n;
        let var = (s2 / n - m1 * m1).max(0.0);
        (m1, 1.0 / (var + eps).sqrt())
    }

    /// `y = act(z)`: two passes per group (mean, then the centred variance).
    pub(super) fn forward<T: WithDType>(x: &CpuStorage, xl: &Layout, p: &[f64], d: Dims, mode: Mode, eps: f64) -> Result<CpuStorage> {
        let x = cpu_slice::<T>(x, xl, OP)?;
        let mut y = Vec::with_capacity(x.len());
        for (i, group) in x.chunks_exact(d.group_len()).enumerate() {
            let n = group.len() as f64;
            let mean = group.iter().map(|v| v.to_f64()).sum::<f64>() / n;
            let var = group.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
            let rstd = 1.0 / (var + eps).sqrt();
            let (b, c0) = (i / d.groups(), (i % d.groups()) * d.per_group);
            for (j, channel) in group.chunks_exact(d.spatial).enumerate() {
                let (mul, add) = coefficients(p, d, mode, b, c0 + j);
                let scale = rstd * mul;
                y.extend(channel.iter().map(|v| {
                    let z = (v.to_f64() - mean) * scale + add;
                    T::from_f64(if mode.silu { z * sigmoid(z) } else { z })
                }));
            }
        }
        Ok(T::to_cpu_storage_owned(y))
    }

    /// The backward sums (module docs of the parent).
    pub(super) fn grad_sums<T: WithDType>(
        x: (&CpuStorage, &Layout),
        dy: (&CpuStorage, &Layout),
        p: &[f64],
        d: Dims,
        mode: Mode,
        eps: f64,
    ) -> Result<Vec<f64>> {
        let (x, dy) = (cpu_slice::<T>(x.0, x.1, OP)?, cpu_slice::<T>(dy.0, dy.1, OP)?);
        check_len(x, dy, d)?;
        let mut sums = Vec::with_capacity(d.sums_len(mode));
        for (i, (xg, dyg)) in x.chunks_exact(d.group_len()).zip(dy.chunks_exact(d.group_len())).enumerate() {
            let k = xg[0].to_f64();
            let first = sums.len();
            for xc in xg.chunks_exact(d.spatial) {
                let (s1, s2) = xc.iter().fold((0.0, 0.0), |(s1, s2), v| {
                    let v = v.to_f64() - k;
                    (s1 + v, s2 + v * v)
                });
                sums.extend([s1, s2, 0.0, 0.0]);
            }
            let group = &sums[first..];
            let (s1, s2) = group.chunks_exact(4).fold((0.0, 0.0), |(s1, s2), s| (s1 + s[0], s2 + s[1]));
            let (m1, rstd) = moments(s1, s2, d.group_len() as f64, eps);
            let (b, c0) = (i / d.groups(), (i % d.groups()) * d.per_group);
            for (j, (xc, dyc)) in xg.chunks_exact(d.spatial).zip(dyg.chunks_exact(d.spatial)).enumerate() {
                let (mul, add) = coefficients(p, d, mode, b, c0 + j);
                let scale = rstd * mul;
                let (mut sg, mut sgd) = (0.0, 0.0);
                for (&xv, &e) in xc.iter().zip(dyc) {
                    let v = xv.to_f64() - k;
                    let mut g = e.to_f64();
                    if mode.silu {
                        g *= silu_slope((v - m1) * scale + add);
                    }
                    sg += g;
                    sgd += g * v;
                }
                let s = &mut sums[first + 4 * j..][..4];
                s[2] = sg;
                s[3] = sgd;
            }
        }
        sums.extend_from_slice(p);
        Ok(sums)
    }

    /// Group `(b, g)` from the backward sums: `(m1, rstd)` (`m1` the mean of `x - k`).
    fn stats(sums: &[f64], d: Dims, b: usize, g: usize, eps: f64) -> (f64, f64) {
        let first = (b * d.channels + g * d.per_group) * 4;
        let channels = sums[first..first + d.per_group * 4].chunks_exact(4);
        let (s1, s2) = channels.fold((0.0, 0.0), |(s1, s2), c| (s1 + c[0], s2 + c[1]));
        moments(s1, s2, d.group_len() as f64, eps)
    }

    /// `dx = rstd * (mul * g - mean(mul * g) - xhat * mean(mul * g * xhat))` per group.
    pub(super) fn grad_input<T: WithDType>(
        x: (&CpuStorage, &Layout),
        dy: (&CpuStorage, &Layout),
        sums: &[f64],
        d: Dims,
        mode: Mode,
        eps: f64,
    ) -> Result<CpuStorage> {
        let (x, dy) = (cpu_slice::<T>(x.0, x.1, OP)?, cpu_slice::<T>(dy.0, dy.1, OP)?);
        check_len(x, dy, d)?;
        let p = &sums[d.batch * d.channels * 4..];
        let n = d.group_len() as f64;
        let mut dx = Vec::with_capacity(x.len());
        for (i, (xg, dyg)) in x.chunks_exact(d.group_len()).zip(dy.chunks_exact(d.group_len())).enumerate() {
            let (b, g) = (i / d.groups(), i % d.groups());
            let (m1, rstd) = stats(sums, d, b, g, eps);
            let c0 = g * d.per_group;
            let (mut sg, mut sgd) = (0.0, 0.0);
            for j in 0..d.per_group {
                let s = &sums[(b * d.channels + c0 + j) * 4..][..4];
                let (mul, _) = coefficients(p, d, mode, b, c0 + j);
                sg += mul * s[2];
                sgd += mul * s[3];
            }
            let mean_g = rstd * sg / n;
            let mean_gx = rstd * rstd * (sgd - m1 * sg) / n;
            let k = xg[0].to_f64();
            for (j, (xc, dyc)) in xg.chunks_exact(d.spatial).zip(dyg.chunks_exact(d.spatial)).enumerate() {
                let (mul, add) = coefficients(p, d, mode, b, c0 + j);
                let scale = rstd * mul;
                dx.extend(xc.iter().zip(dyc).map(|(&xv, &e)| {
                    let v = (xv.to_f64() - k) - m1;
                    let mut g = e.to_f64();
                    if mode.silu {
                        g *= silu_slope(v * scale + add);
                    }
                    T::from_f64(scale * g - mean_g - v * rstd * mean_gx)
                }));
            }
        }
        Ok(T::to_cpu_storage_owned(dx))
    }

    /// The gradient of `p`: with `G0 = sum g`, `G1 = sum g * xhat` per (sample, channel), `dweight[c] =
    /// sum_b (1 + scale) * G1`, `dbias[c] = sum_b (1 + scale) * G0` and, when modulated,
    /// `dscale = weight * G1 + bias * G0`, `dshift = G0`.
    pub(super) fn grad_params(sums: &[f64], d: Dims, mode: Mode, eps: f64) -> Vec<f64> {
        let (channels, bc) = (d.channels, d.batch * d.channels);
        let p = &sums[bc * 4..];
        let mut out = vec![0.0; d.params_len(mode)];
        for b in 0..d.batch {
            for g in 0..d.groups() {
                let (m1, rstd) = stats(sums, d, b, g, eps);
                for c in g * d.per_group..(g + 1) * d.per_group {
                    let s = &sums[(b * channels + c) * 4..][..4];
                    let (g0, g1) = (s[2], rstd * (s[3] - m1 * s[2]));
                    let i = b * channels + c;
                    let one_scale = if mode.modulated { 1.0 + p[2 * channels + i] } else { 1.0 };
                    out[c] += one_scale * g1;
                    out[channels + c] += one_scale * g0;
                    if mode.modulated {
                        out[2 * channels + i] = p[c] * g1 + p[channels + c] * g0;
                        out[2 * channels + bc + i] = g0;
                    }
                }
            }
        }
        out
    }
}

/// The CUDA passes: the kernels of `group_norm_op.cu`: the forward's statistics, the forward and the input
/// gradient with one block per (sample, group) (its `C / G * S` elements are contiguous), the backward sums
/// with one block or one warp per (sample, channel).
#[cfg(feature = "cuda")]
mod cuda {
    use super::{Dims, Mode, OP};
    use crate::candle::backend::BackendStorage;
    use crate::candle::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg};
    use crate::candle::cuda_backend::{CudaDType, CudaDevice, CudaStorage, WrapErr};
    use crate::candle::{Error, Layout, Result, WithDType};
    use crate::ops::custom_op::cuda::{view, Elem, Kernels};

    /// The kernels, loaded as `boot_group_norm`.
    static KERNELS: Kernels =
        Kernels::new("boot_group_norm", "sigmoid.cu + group_norm_op.cu", concat!(include_str!("sigmoid.cu"), include_str!("group_norm_op.cu")));
    /// Threads of the per-group and per-channel blocks at most, and of the parameter-gradient blocks.
    const MAX_THREADS: usize = 256;
    /// Channels per block of the backward sums when a channel has at most [`WARP_VECTORS`] vectors: one warp each.
    const WARPS: usize = 8;
    /// Vectors of 16 bytes per channel up to which one warp sums a channel.
    const WARP_VECTORS: usize = 128;

    /// `v` as a kernel's `int`.
    fn int(v: usize, what: &str) -> Result<i32> {
        i32::try_from(v).map_err(|_| Error::Msg(format!("{OP}: {what} = {v} does not fit the kernels' 32-bit ints")).bt())
    }

    /// `(C, C / G, S)` as kernel ints, checking that `B * C` and a group's `C / G * S` elements fit too.
    fn sizes(d: Dims) -> Result<(i32, i32, i32)> {
        int(d.batch * d.channels, "batch * channels")?;
        int(d.group_len(), "group size")?;
        Ok((int(d.channels, "channels")?, int(d.per_group, "channels per group")?, int(d.spatial, "spatial size")?))
    }

    /// The kernels' `modulated` and `silu` flags.
    fn flags(mode: Mode) -> (i32, i32) {
        (i32::from(mode.modulated), i32::from(mode.silu))
    }

    /// Elements of `T` in one 16-byte vector of the kernels.
    fn vector<T>() -> usize {
        16 / std::mem::size_of::<T>()
    }

    /// A power of two of threads from 32 to [`MAX_THREADS`] for `len` elements of `T` (in 16-byte vectors).
    fn threads_for<T>(len: usize) -> u32 {
        len.div_ceil(vector::<T>()).next_power_of_two().clamp(32, MAX_THREADS) as u32
    }

    /// One block per (sample, group).
    fn per_group<T>(d: Dims) -> LaunchConfig {
        let blocks = (d.batch * d.groups()) as u32;
        LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (threads_for::<T>(d.group_len()), 1, 1), shared_mem_bytes: 0 }
    }

    /// The backward sums' launch and its `per_block` argument: for short channels one warp per (sample,
    /// channel), [`WARPS`] to a block; else one block per (sample, channel).
    fn per_channel<T>(d: Dims) -> (LaunchConfig, i32) {
        let bc = d.batch * d.channels;
        if d.spatial.div_ceil(vector::<T>()) <= WARP_VECTORS {
            let blocks = bc.div_ceil(WARPS) as u32;
            (LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (32 * WARPS as u32, 1, 1), shared_mem_bytes: 0 }, WARPS as i32)
        } else {
            (LaunchConfig { grid_dim: (bc as u32, 1, 1), block_dim: (threads_for::<T>(d.spatial), 1, 1), shared_mem_bytes: 0 }, 1)
        }
    }

    /// The group sums of `d`, `d^2` (`[B, G, 2]`) of `x`.
    fn moment_sums<T: Elem>(x: &CudaView<'_, T>, dev: &CudaDevice, d: Dims) -> Result<CudaSlice<T::Acc>> {
        sizes(d)?;
        let len = int(d.group_len(), "group size")?;
        // SAFETY: every element is written by the kernel (one per (sample, group) block, two values each).
        let sums = unsafe { dev.alloc::<T::Acc>(d.batch * d.groups() * 2)? };
        let f = KERNELS.func(dev, &format!("gn_sums_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(x).arg(&sums).arg(&len);
        // SAFETY: argument types and order match the kernel; the grid covers [B * G] blocks of valid data.
        unsafe { launch.launch(per_group::<T>(d)) }.w()?;
        Ok(sums)
    }

    /// The forward op: group sums of `d`, `d^2`, then `y`.
    pub(super) fn forward<T: Elem>(x: (&CudaStorage, &Layout), p: (&CudaStorage, &Layout), d: Dims, mode: Mode, eps: f64) -> Result<CudaStorage> {
        let dev = x.0.device();
        let (xv, pv) = (view::<T>(x.0, x.1, OP)?, view::<T::Acc>(p.0, p.1, OP)?);
        let sums = moment_sums::<T>(&xv, dev, d)?;
        let (c, cpg, s) = sizes(d)?;
        let (modulated, silu) = flags(mode);
        let eps = T::Acc::from_f64(eps);
        // SAFETY: every element is written by the kernel.
        let y = unsafe { dev.alloc::<T>(d.len())? };
        let f = KERNELS.func(dev, &format!("gn_forward_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&sums).arg(&pv).arg(&y).arg(&c).arg(&cpg).arg(&s).arg(&eps).arg(&modulated).arg(&silu);
        // SAFETY: argument types and order match the kernel; the grid covers [B * G] blocks of valid data.
        unsafe { launch.launch(per_group::<T>(d)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(y, dev.clone()))
    }

    /// The backward sums: with SiLU the group moment sums first (for `z`), then the four channel sums, then `p`
    /// copied behind them.
    pub(super) fn grad_sums<T: Elem>(
        x: (&CudaStorage, &Layout),
        dy: (&CudaStorage, &Layout),
        p: (&CudaStorage, &Layout),
        d: Dims,
        mode: Mode,
        eps: f64,
    ) -> Result<CudaStorage> {
        let dev = x.0.device();
        let (xv, dyv, pv) = (view::<T>(x.0, x.1, OP)?, view::<T>(dy.0, dy.1, OP)?, view::<T::Acc>(p.0, p.1, OP)?);
        let moments = if mode.silu { Some(moment_sums::<T>(&xv, dev, d)?) } else { None };
        let (c, cpg, s) = sizes(d)?;
        let batch = int(d.batch, "batch")?;
        let (modulated, silu) = flags(mode);
        let eps = T::Acc::from_f64(eps);
        let (cfg, per_block) = per_channel::<T>(d);
        let head = d.batch * d.channels * 4;
        // SAFETY: the kernel writes the first `head` elements (four per (sample, channel)), the copy below the rest.
        let mut sums = unsafe { dev.alloc::<T::Acc>(d.sums_len(mode))? };
        let f = KERNELS.func(dev, &format!("gn_grad_sums_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&dyv).arg(&pv);
        // The kernel reads the moment sums only with SiLU: without, `p` stands in for the unused pointer.
        match &moments {
            Some(m) => launch.arg(m),
            None => launch.arg(&pv),
        };
        launch.arg(&sums).arg(&batch).arg(&c).arg(&cpg).arg(&s).arg(&eps).arg(&modulated).arg(&silu).arg(&per_block);
        // SAFETY: argument types and order match the kernel; the grid covers the B * C channels (blocks, or
        // warps with those past B * C returning at once).
        unsafe { launch.launch(cfg) }.w()?;
        let mut tail = sums.try_slice_mut(head..).ok_or_else(|| Error::Msg(format!("{OP}: sums shorter than {head}")).bt())?;
        stream.memcpy_dtod(&pv, &mut tail).w()?;
        Ok(CudaStorage::wrap_cuda_slice(sums, dev.clone()))
    }

    /// The input gradient.
    pub(super) fn grad_input<T: Elem>(
        x: (&CudaStorage, &Layout),
        dy: (&CudaStorage, &Layout),
        sums: (&CudaStorage, &Layout),
        d: Dims,
        mode: Mode,
        eps: f64,
    ) -> Result<CudaStorage> {
        let dev = x.0.device();
        let (xv, dyv, sv) = (view::<T>(x.0, x.1, OP)?, view::<T>(dy.0, dy.1, OP)?, view::<T::Acc>(sums.0, sums.1, OP)?);
        let (c, cpg, s) = sizes(d)?;
        let (modulated, silu) = flags(mode);
        let eps = T::Acc::from_f64(eps);
        // SAFETY: every element is written by the kernel.
        let dx = unsafe { dev.alloc::<T>(d.len())? };
        let f = KERNELS.func(dev, &format!("gn_grad_input_{}", T::SUFFIX))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&xv).arg(&dyv).arg(&sv).arg(&dx).arg(&c).arg(&cpg).arg(&s).arg(&eps).arg(&modulated).arg(&silu);
        // SAFETY: argument types and order match the kernel; the grid covers [B * G] blocks of valid data.
        unsafe { launch.launch(per_group::<T>(d)) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(dx, dev.clone()))
    }

    /// The gradient of `p` from the sums (`A` their dtype, `f32` or `f64`).
    pub(super) fn grad_params<A: CudaDType + DeviceRepr + WithDType>(sums: (&CudaStorage, &Layout), d: Dims, mode: Mode, eps: f64) -> Result<CudaStorage> {
        let dev = sums.0.device();
        let sv = view::<A>(sums.0, sums.1, OP)?;
        let (c, cpg, s) = sizes(d)?;
        let batch = int(d.batch, "batch")?;
        let (modulated, _) = flags(mode);
        let eps = A::from_f64(eps);
        let suffix = if A::DTYPE == crate::candle::DType::F64 { "f64" } else { "f32" };
        // SAFETY: every element is written by the kernel (one thread per channel writes its weight, bias and,
        // when modulated, its scale and shift entries of every sample).
        let out = unsafe { dev.alloc::<A>(d.params_len(mode))? };
        let f = KERNELS.func(dev, &format!("gn_grad_params_{suffix}"))?;
        let stream = dev.cuda_stream();
        let mut launch = stream.launch_builder(&f);
        launch.arg(&sv).arg(&out).arg(&batch).arg(&c).arg(&cpg).arg(&s).arg(&eps).arg(&modulated);
        let blocks = d.channels.div_ceil(MAX_THREADS) as u32;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (MAX_THREADS as u32, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: argument types and order match the kernel; threads past C return at once.
        unsafe { launch.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
    }
}
