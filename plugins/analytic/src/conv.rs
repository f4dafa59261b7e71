//! A 3x3, stride 1, zero-padded convolution over channels-last (NHWC) images, written as im2col + one matmul.
//!
//! The columns end with a constant 1 so that the bias is the last row of the weight matrix. On CPU the
//! convolution is one custom op whose backward recomputes the columns and runs two matmuls and a col2im:
//! candle's own `conv2d` backward goes through a naive `conv_transpose2d`, and letting autograd see the
//! (9x larger) columns costs a zero-filled gradient buffer and an extra pass over them. On other devices the
//! columns are built from pads and slices, so results and parameters are the same everywhere.

use boot_sdk::candle::backend::BackendStorage;
use boot_sdk::candle::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor, WithDType};
use boot_sdk::candle_nn::{Init, VarBuilder};

use crate::cpu::{contiguous, parallel, with_cpu_data};

/// A 3x3 convolution with bias; weight `[3, 3, in, out]` (`weight`), bias `[out]` (`bias`).
#[derive(Debug, Clone)]
pub struct Conv3x3 {
    weight: Tensor,
    bias: Tensor,
    out: usize,
}

impl Conv3x3 {
    /// A convolution from `cin` to `cout` channels; `zero` initialises it to zero (a block that starts as the
    /// identity), otherwise LeCun-normal.
    pub fn new(cin: usize, cout: usize, zero: bool, vb: VarBuilder) -> boot_sdk::Result<Self> {
        let init = if zero { Init::Const(0.0) } else { Init::Randn { mean: 0.0, stdev: (1.0 / (9 * cin) as f64).sqrt() } };
        let weight = vb.get_with_hints((3, 3, cin, cout), "weight", init)?;
        let bias = vb.get_with_hints(cout, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, out: cout })
    }

    /// Applies the convolution to `x` `[B, H, W, in]`, giving `[B, H, W, out]`.
    pub fn forward(&self, x: &Tensor) -> boot_sdk::Result<Tensor> {
        let (b, h, w, cin) = x.dims4()?;
        let matrix = Tensor::cat(&[self.weight.reshape((9 * cin, self.out))?, self.bias.reshape((1, self.out))?], 0)?;
        if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) {
            Ok(x.contiguous()?.apply_op2(&matrix, ConvOp)?)
        } else {
            Ok(im2col_slices(x)?.matmul(&matrix)?.reshape((b, h, w, self.out))?)
        }
    }
}

/// `[B * H * W, 9 * C + 1]` columns of `x` `[B, H, W, C]` from pads and slices, for any device: row
/// `(b, y, x)` holds the 3x3 neighbourhood of that pixel (zeros outside the image), ordered (ky, kx, c), then a 1.
fn im2col_slices(x: &Tensor) -> boot_sdk::Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let padded = x.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
    let mut taps = Vec::with_capacity(10);
    for ky in 0..3 {
        for kx in 0..3 {
            taps.push(padded.narrow(1, ky, h)?.narrow(2, kx, w)?);
        }
    }
    taps.push(Tensor::ones((b, h, w, 1), x.dtype(), x.device())?);
    Ok(Tensor::cat(&taps, 3)?.reshape((b * h * w, 9 * c + 1))?)
}

/// Calls `visit(pixel, row, slot)` for every copy im2col makes within one `h x w` image: source `pixel` (in
/// units of `c` elements) goes to tap `slot` (0..9) of column `row` (in units of `9 c + 1` elements).
fn taps(h: usize, w: usize, mut visit: impl FnMut(usize, usize, usize)) {
    for y in 0..h {
        for x in 0..w {
            let row = y * w + x;
            for ky in 0..3 {
                let Some(sy) = (y + ky).checked_sub(1).filter(|&sy| sy < h) else { continue };
                for kx in 0..3 {
                    let Some(sx) = (x + kx).checked_sub(1).filter(|&sx| sx < w) else { continue };
                    visit(sy * w + sx, row, ky * 3 + kx);
                }
            }
        }
    }
}

/// The columns of [`im2col_slices`], on CPU.
fn im2col_cpu<T: WithDType>(src: &[T], (b, h, w, c): (usize, usize, usize, usize)) -> Vec<T> {
    let width = 9 * c + 1;
    let mut out = vec![T::zero(); b * h * w * width];
    let items: Vec<_> = out.chunks_mut(h * w * width).zip(src.chunks(h * w * c)).collect();
    parallel(items, |(out, src)| {
        for r in 0..h * w {
            out[r * width + 9 * c] = T::one();
        }
        taps(h, w, |p, r, s| {
            let at = r * width + s * c;
            out[at..at + c].copy_from_slice(&src[p * c..(p + 1) * c])
        });
    });
    out
}

/// The adjoint of [`im2col_cpu`]: sums each column entry back onto the pixel it was copied from (the constant
/// column has no source).
fn col2im_cpu<T: WithDType>(cols: &[T], (b, h, w, c): (usize, usize, usize, usize)) -> Vec<T> {
    let width = 9 * c + 1;
    let mut out = vec![T::zero(); b * h * w * c];
    let items: Vec<_> = out.chunks_mut(h * w * c).zip(cols.chunks(h * w * width)).collect();
    parallel(items, |(out, cols)| {
        taps(h, w, |p, r, s| {
            let at = r * width + s * c;
            for (o, &g) in out[p * c..(p + 1) * c].iter_mut().zip(&cols[at..at + c]) {
                *o += g;
            }
        });
    });
    out
}

/// The CPU convolution: arguments `x` `[B, H, W, C]` and the weight matrix `[9 C + 1, O]` (bias last).
struct ConvOp;

fn conv_fwd<T: WithDType>(x: &[T], m: &[T], dims: (usize, usize, usize, usize), (k, o): (usize, usize)) -> boot_sdk::candle::Result<Vec<T>> {
    let n = dims.0 * dims.1 * dims.2;
    let cols = Tensor::from_vec(im2col_cpu(x, dims), (n, k), &Device::Cpu)?;
    let m = Tensor::from_slice(m, (k, o), &Device::Cpu)?;
    cols.matmul(&m)?.flatten_all()?.to_vec1::<T>()
}

fn conv_bwd<T: WithDType>(x: &Tensor, m: &Tensor, dy: &Tensor) -> boot_sdk::candle::Result<(Tensor, Tensor)> {
    let dims = x.dims4()?;
    let (k, o) = m.dims2()?;
    let n = dims.0 * dims.1 * dims.2;
    let cols = Tensor::from_vec(with_cpu_data(x, |x: &[T]| im2col_cpu(x, dims))?, (n, k), x.device())?;
    let dy = dy.detach().reshape((n, o))?;
    let dm = cols.t()?.matmul(&dy)?;
    let dcols = dy.matmul(&m.detach().t()?)?;
    let dx = with_cpu_data(&dcols, |d: &[T]| col2im_cpu(d, dims))?;
    Ok((Tensor::from_vec(dx, x.shape(), x.device())?, dm))
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "analytic-conv3x3"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, m: &CpuStorage, ml: &Layout) -> boot_sdk::candle::Result<(CpuStorage, Shape)> {
        let dims = xl.shape().dims4()?;
        let (k, o) = ml.shape().dims2()?;
        if k != 9 * dims.3 + 1 {
            return Err(boot_sdk::candle::Error::Msg(format!("analytic-conv3x3: x {:?} with weights {:?}", xl.shape(), ml.shape())));
        }
        let out = match (x, m) {
            (CpuStorage::F32(x), CpuStorage::F32(m)) => CpuStorage::F32(conv_fwd(contiguous(x, xl, self.name())?, contiguous(m, ml, self.name())?, dims, (k, o))?),
            (CpuStorage::F64(x), CpuStorage::F64(m)) => CpuStorage::F64(conv_fwd(contiguous(x, xl, self.name())?, contiguous(m, ml, self.name())?, dims, (k, o))?),
            _ => return Err(boot_sdk::candle::Error::UnsupportedDTypeForOp(x.dtype(), "analytic-conv3x3")),
        };
        Ok((out, Shape::from((dims.0, dims.1, dims.2, o))))
    }

    fn bwd(&self, x: &Tensor, m: &Tensor, _res: &Tensor, dy: &Tensor) -> boot_sdk::candle::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dm) = match x.dtype() {
            DType::F32 => conv_bwd::<f32>(x, m, dy)?,
            DType::F64 => conv_bwd::<f64>(x, m, dy)?,
            other => return Err(boot_sdk::candle::Error::UnsupportedDTypeForOp(other, "analytic-conv3x3")),
        };
        Ok((Some(dx), Some(dm)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot_sdk::candle::Var;
    use boot_sdk::candle_nn::VarMap;

    fn max_diff(a: &Tensor, b: &Tensor) -> boot_sdk::Result<f64> {
        Ok((a - b)?.abs()?.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
    }

    #[test]
    fn cpu_op_matches_slices_forward_and_backward() -> boot_sdk::Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let conv = Conv3x3::new(3, 4, false, VarBuilder::from_varmap(&varmap, DType::F64, &dev))?;
        for var in varmap.all_vars() {
            var.set(&Tensor::randn(0f64, 1.0, var.shape(), &dev)?)?;
        }
        let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 5, 4, 3), &dev)?)?;
        let probe = Tensor::randn(0f64, 1.0, (2, 5, 4, 4), &dev)?;
        let fast = conv.forward(&x)?;
        let matrix = Tensor::cat(&[conv.weight.reshape((27, 4))?, conv.bias.reshape((1, 4))?], 0)?;
        let slow = im2col_slices(&x)?.matmul(&matrix)?.reshape((2, 5, 4, 4))?;
        assert!(max_diff(&fast, &slow)? < 1e-12);
        let g_fast = (fast * &probe)?.sum_all()?.backward()?;
        let g_slow = (slow * &probe)?.sum_all()?.backward()?;
        for t in [x.as_tensor(), &conv.weight, &conv.bias] {
            let (a, b) = (g_fast.get(t).expect("fast gradient"), g_slow.get(t).expect("slow gradient"));
            assert!(max_diff(a, b)? < 1e-12, "gradients differ by {}", max_diff(a, b)?);
        }
        Ok(())
    }

    #[test]
    fn conv_matches_candle_conv2d() -> boot_sdk::Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let conv = Conv3x3::new(3, 4, false, VarBuilder::from_varmap(&varmap, DType::F32, &dev).pp("c"))?;
        for var in varmap.all_vars() {
            var.set(&Tensor::randn(0f32, 1.0, var.shape(), &dev)?)?;
        }
        let x = Tensor::randn(0f32, 1.0, (2, 6, 5, 3), &dev)?;
        let ours = conv.forward(&x)?.permute((0, 3, 1, 2))?;
        // [3, 3, in, out] -> [out, in, 3, 3]
        let w = conv.weight.permute((3, 2, 0, 1))?.contiguous()?;
        let theirs = x.permute((0, 3, 1, 2))?.contiguous()?.conv2d(&w, 1, 1, 1, 1)?.broadcast_add(&conv.bias.reshape((4, 1, 1))?)?;
        assert!(max_diff(&ours, &theirs)? < 1e-5);
        Ok(())
    }
}
