//! Group normalisation followed by SiLU over channels-last images, with an optional per-sample, per-channel
//! shift added first (how a residual block injects its embedding):
//! `y = silu(weight * GN(x + shift) + bias)`.
//!
//! On CPU in f32 it is one custom op with a hand-written backward, parallel over samples. Written with candle's
//! tensor ops (the path on other devices and dtypes), its backward reduces over leading axes, which candle does
//! element by element, and allocates a gradient per op; that made the student's step several times slower.

use boot_sdk::candle::backend::BackendStorage;
use boot_sdk::candle::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use boot_sdk::candle_nn::{Init, VarBuilder};

use crate::cpu::{contiguous, parallel, with_cpu_data};

/// Groups of every group norm; channel counts must be multiples of it.
pub const GROUPS: usize = 8;
/// Added to the group variance.
const EPS: f64 = 1e-5;

/// `silu(GN(x + shift))` with a per-channel affine (`weight`, `bias`) over `[B, H, W, C]` images.
#[derive(Debug, Clone)]
pub struct GroupNormSilu {
    weight: Tensor,
    bias: Tensor,
}

impl GroupNormSilu {
    /// A group norm over `channels` channels in [`GROUPS`] groups, starting as the plain normalisation.
    pub fn new(channels: usize, vb: VarBuilder) -> boot_sdk::Result<Self> {
        anyhow::ensure!(channels.is_multiple_of(GROUPS), "group norm: {channels} channels are not a multiple of {GROUPS} groups");
        Ok(Self {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
        })
    }

    /// `silu(weight * GN(x + shift) + bias)` for `x` `[B, H, W, C]` and `shift` `[B, C]` (zero when `None`).
    pub fn forward(&self, x: &Tensor, shift: Option<&Tensor>) -> boot_sdk::Result<Tensor> {
        let (b, _, _, c) = x.dims4()?;
        let shift = match shift {
            Some(s) => s.contiguous()?,
            None => Tensor::zeros((b, c), x.dtype(), x.device())?,
        };
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            let affine = Tensor::stack(&[&self.weight, &self.bias], 0)?;
            Ok(x.contiguous()?.apply_op3(&affine, &shift, GnSilu)?)
        } else {
            self.forward_tensor_ops(x, &shift)
        }
    }

    /// The same function from candle tensor ops, for any device.
    fn forward_tensor_ops(&self, x: &Tensor, shift: &Tensor) -> boot_sdk::Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let u = x.broadcast_add(&shift.reshape((b, 1, 1, c))?)?;
        let g = u.reshape((b, h * w, GROUPS, c / GROUPS))?;
        let mean = g.mean_keepdim(3)?.mean_keepdim(1)?;
        let centred = g.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(3)?.mean_keepdim(1)?;
        let normed = centred.broadcast_div(&(var + EPS)?.sqrt()?)?.reshape((b, h, w, c))?;
        Ok(normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?.silu()?)
    }
}

/// The CPU op (f32): arguments `x` `[B, H, W, C]`, `affine` `[2, C]` (weight; bias), `shift` `[B, C]`.
struct GnSilu;

/// Sizes of one call: batch, pixels per image, channels, channels per group.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    hw: usize,
    c: usize,
    cg: usize,
}

impl Dims {
    fn of(shape: &Shape) -> boot_sdk::candle::Result<Self> {
        let (b, h, w, c) = shape.dims4()?;
        Ok(Self { b, hw: h * w, c, cg: c / GROUPS })
    }
}

/// Per-channel `(rstd, (shift - mean) * rstd)` of one sample, so that `xhat = x * rstd + centre` with the
/// mean and reciprocal std of the channel's group of `x + shift`.
fn sample_stats(x: &[f32], shift: &[f32], d: Dims) -> Vec<(f32, f32)> {
    let mut sum = vec![0f32; d.c];
    let mut sum_sq = vec![0f32; d.c];
    for row in x.chunks_exact(d.c) {
        for ((s, s2), (&v, &sh)) in sum.iter_mut().zip(sum_sq.iter_mut()).zip(row.iter().zip(shift)) {
            let u = v + sh;
            *s += u;
            *s2 += u * u;
        }
    }
    let n = (d.hw * d.cg) as f64;
    let mut out = Vec::with_capacity(d.c);
    for g in 0..GROUPS {
        let range = g * d.cg..(g + 1) * d.cg;
        let mean = sum[range.clone()].iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = (sum_sq[range.clone()].iter().map(|&v| v as f64).sum::<f64>() / n - mean * mean).max(0.0);
        let rstd = 1.0 / (var + EPS).sqrt();
        out.extend(range.map(|ch| (rstd as f32, ((shift[ch] as f64 - mean) * rstd) as f32)));
    }
    out
}

/// `1 / (1 + e^-z)` with [`exp`].
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// `e^x` to about 1e-7 relative error, branch-free so that loops over it vectorise (`f32::exp` is a libm call
/// per element, which was a sizeable part of the norm kernels): `e^x = 2^n e^r` with `|r| <= ln2 / 2` and a
/// degree-7 Taylor polynomial for `e^r`.
fn exp(x: f32) -> f32 {
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer with plain float arithmetic (`round` and
    // `floor` are libm calls on the baseline x86-64 target).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 split in a part exact in f32 and a remainder (Cody-Waite), so `r` keeps its precision.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `y` of one sample.
fn forward_sample(x: &[f32], gamma: &[f32], beta: &[f32], shift: &[f32], d: Dims, y: &mut [f32]) {
    let stats = sample_stats(x, shift, d);
    let scale: Vec<f32> = stats.iter().zip(gamma).map(|((r, _), g)| r * g).collect();
    let offset: Vec<f32> = stats.iter().zip(gamma.iter().zip(beta)).map(|((_, o), (g, b))| o * g + b).collect();
    for (xr, yr) in x.chunks_exact(d.c).zip(y.chunks_exact_mut(d.c)) {
        for (((yv, &xv), &sc), &of) in yr.iter_mut().zip(xr).zip(&scale).zip(&offset) {
            let z = xv * sc + of;
            *yv = z * sigmoid(z);
        }
    }
}

/// Gradients of one sample: `dx` `[HW, C]`, and per channel `d_shift`, `d_gamma`, `d_beta` (the last two to
/// be summed over samples).
struct SampleGrads<'a> {
    dx: &'a mut [f32],
    d_shift: &'a mut [f32],
    d_gamma: &'a mut [f32],
    d_beta: &'a mut [f32],
}

fn backward_sample(x: &[f32], gamma: &[f32], beta: &[f32], shift: &[f32], dy: &[f32], d: Dims, out: SampleGrads) {
    let stats = sample_stats(x, shift, d);
    // Pass 1: dz, the affine gradients and per-channel sums of dxhat and dxhat * xhat (dxhat kept in dx).
    let mut s1 = vec![0f32; d.c];
    let mut s2 = vec![0f32; d.c];
    for ((xr, dyr), dxr) in x.chunks_exact(d.c).zip(dy.chunks_exact(d.c)).zip(out.dx.chunks_exact_mut(d.c)) {
        for ch in 0..d.c {
            let (rstd, centre) = stats[ch];
            let xhat = xr[ch] * rstd + centre;
            let z = gamma[ch] * xhat + beta[ch];
            let s = sigmoid(z);
            let dz = dyr[ch] * s * (1.0 + z * (1.0 - s));
            out.d_gamma[ch] += dz * xhat;
            out.d_beta[ch] += dz;
            let g = dz * gamma[ch];
            dxr[ch] = g;
            s1[ch] += g;
            s2[ch] += g * xhat;
        }
    }
    // Pass 2: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) over the group.
    let n = (d.hw * d.cg) as f64;
    let mut m1 = vec![0f32; d.c];
    let mut m2 = vec![0f32; d.c];
    for g in 0..GROUPS {
        let range = g * d.cg..(g + 1) * d.cg;
        let a = (s1[range.clone()].iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
        let b = (s2[range.clone()].iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
        m1[range.clone()].fill(a);
        m2[range].fill(b);
    }
    for (xr, dxr) in x.chunks_exact(d.c).zip(out.dx.chunks_exact_mut(d.c)) {
        for ch in 0..d.c {
            let (rstd, centre) = stats[ch];
            let xhat = xr[ch] * rstd + centre;
            let du = rstd * (dxr[ch] - m1[ch] - xhat * m2[ch]);
            dxr[ch] = du;
            out.d_shift[ch] += du;
        }
    }
}

fn forward(x: &[f32], affine: &[f32], shift: &[f32], d: Dims) -> Vec<f32> {
    let (gamma, beta) = affine.split_at(d.c);
    let mut y = vec![0f32; x.len()];
    let per = d.hw * d.c;
    let items: Vec<_> = y.chunks_mut(per).zip(x.chunks(per)).zip(shift.chunks(d.c)).collect();
    parallel(items, |((y, x), shift)| forward_sample(x, gamma, beta, shift, d, y));
    y
}

/// Gradients `(dx, d_affine, d_shift)` for the upstream gradient `dy`.
fn backward(x: &[f32], affine: &[f32], shift: &[f32], dy: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (gamma, beta) = affine.split_at(d.c);
    let per = d.hw * d.c;
    let mut dx = vec![0f32; x.len()];
    let mut d_shift = vec![0f32; d.b * d.c];
    let mut d_gamma = vec![0f32; d.b * d.c];
    let mut d_beta = vec![0f32; d.b * d.c];
    let items: Vec<_> = x
        .chunks(per)
        .zip(dy.chunks(per))
        .zip(shift.chunks(d.c))
        .zip(dx.chunks_mut(per).zip(d_shift.chunks_mut(d.c)).zip(d_gamma.chunks_mut(d.c).zip(d_beta.chunks_mut(d.c))))
        .collect();
    parallel(items, |(((x, dy), shift), ((dx, d_shift), (d_gamma, d_beta)))| {
        backward_sample(x, gamma, beta, shift, dy, d, SampleGrads { dx, d_shift, d_gamma, d_beta })
    });
    let mut d_affine = vec![0f32; 2 * d.c];
    for (dg, db) in d_gamma.chunks(d.c).zip(d_beta.chunks(d.c)) {
        for ch in 0..d.c {
            d_affine[ch] += dg[ch];
            d_affine[d.c + ch] += db[ch];
        }
    }
    (dx, d_affine, d_shift)
}

impl CustomOp3 for GnSilu {
    fn name(&self) -> &'static str {
        "analytic-gn-silu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        affine: &CpuStorage,
        al: &Layout,
        shift: &CpuStorage,
        sl: &Layout,
    ) -> boot_sdk::candle::Result<(CpuStorage, Shape)> {
        let d = Dims::of(xl.shape())?;
        if al.shape().dims() != [2, d.c] || sl.shape().dims() != [d.b, d.c] {
            return Err(boot_sdk::candle::Error::Msg(format!(
                "analytic-gn-silu: x {:?} with affine {:?} and shift {:?}",
                xl.shape(),
                al.shape(),
                sl.shape()
            )));
        }
        match (x, affine, shift) {
            (CpuStorage::F32(x), CpuStorage::F32(a), CpuStorage::F32(s)) => Ok((
                CpuStorage::F32(forward(contiguous(x, xl, self.name())?, contiguous(a, al, self.name())?, contiguous(s, sl, self.name())?, d)),
                xl.shape().clone(),
            )),
            _ => Err(boot_sdk::candle::Error::UnsupportedDTypeForOp(x.dtype(), "analytic-gn-silu")),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        affine: &Tensor,
        shift: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> boot_sdk::candle::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = Dims::of(x.shape())?;
        let (a, s) = (affine.flatten_all()?.to_vec1::<f32>()?, shift.flatten_all()?.to_vec1::<f32>()?);
        let (dx, da, ds) = with_cpu_data(x, |x| with_cpu_data(dy, |dy| backward(x, &a, &s, dy, d)))??;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(da, affine.shape(), x.device())?),
            Some(Tensor::from_vec(ds, shift.shape(), x.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot_sdk::candle::{Device, Var};
    use boot_sdk::candle_nn::VarMap;

    #[test]
    fn fast_exp_matches_std() {
        for i in -1990..=2010 {
            let x = i as f32 * 0.0437;
            let (ours, std) = (exp(x), x.exp());
            assert!(((ours - std) / std).abs() < 5e-7, "exp({x}): {ours} vs {std}");
        }
        assert!(exp(-200.0) >= 0.0 && exp(-200.0) < 1e-37 && exp(200.0).is_finite());
    }

    #[test]
    fn fused_op_matches_tensor_ops_forward_and_backward() -> boot_sdk::Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let norm = GroupNormSilu::new(16, VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
        for var in varmap.all_vars() {
            var.set(&(Tensor::randn(0f32, 0.5, var.shape(), &dev)? + 1.0)?)?;
        }
        let x = Var::from_tensor(&(Tensor::randn(0f32, 2.0, (3, 4, 5, 16), &dev)? + 3.0)?)?;
        let shift = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 16), &dev)?)?;
        let probe = Tensor::randn(0f32, 1.0, (3, 4, 5, 16), &dev)?;
        let fused = norm.forward(&x, Some(&shift))?;
        let plain = norm.forward_tensor_ops(&x, &shift)?;
        let close = |a: &Tensor, b: &Tensor| -> boot_sdk::Result<f32> { Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?) };
        assert!(close(&fused, &plain)? < 1e-5);
        let g_fused = (fused * &probe)?.sum_all()?.backward()?;
        let g_plain = (plain * &probe)?.sum_all()?.backward()?;
        let mut checked = 0;
        for t in [x.as_tensor(), shift.as_tensor(), &norm.weight, &norm.bias] {
            let (a, b) = (g_fused.get(t).expect("fused gradient"), g_plain.get(t).expect("plain gradient"));
            assert!(close(a, b)? < 1e-4, "gradient differs by {}", close(a, b)?);
            checked += 1;
        }
        assert_eq!(checked, 4);
        Ok(())
    }
}
