//! `boot_sdk::ops::{upsample_nearest2x, avg_pool2x}` (custom ops with one kernel each way,
//! `sdk/src/ops/resample_op.rs`) against candle's own `upsample_nearest2d` / `avg_pool2d` and its autodiff:
//! the output and the gradient of `sum(y * r)` for a random `r`, on inputs that are contiguous, contiguous
//! with a start offset (a narrowed tensor) and transposed; odd sizes, other ranks and an integer dtype as
//! errors; a tensor larger than one launch's grid (the CUDA kernels' grid-stride loops).
//!
//! The runs go to `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`); `f16` runs go to the same
//! device, the `f64` runs stay on the CPU. The reference is candle on the CPU (whatever the test device: its
//! CUDA up-sampling backward is a convolution, which may run in TF32) on the same values, in `f32` for a
//! half-precision input (`f64` for `f64`), rounded once to the input's dtype, which is what the ops compute.
//! Tolerances, relative L2 error:
//!
//! - `f32`: [`F32_TOL`] = 1e-6. The outputs and the pooling's gradient are exact (a 2x2 block sums in
//!   candle's `avg_pool2d` order; spreading and scaling by 1/4 are exact); the up-sampling's gradient is
//!   exact where candle's convolution sums a block in the same order, else an ulp on a few elements;
//! - `bf16`, `f16`: [`HALF_ROUNDED`] = 5e-4, one step on a few elements where two `f32` block sums in
//!   different orders fall on either side of a rounding boundary;
//! - `f64`: 1e-14.
//!
//! Measured on the CPU (f32, bf16, f16, f64): every output and gradient exact (error 0).
//!
//! Run with `--nocapture` to see every number.

mod common;

use boot_sdk::candle::{DType, Device, Tensor, Var};
use boot_sdk::ops::{avg_pool2x, upsample_nearest2x};
use common::inputs::{randn, Input};
use common::*;

/// Relative L2 error in `f32`.
const F32_TOL: f64 = 1e-6;
/// Relative L2 error of a `bf16` or `f16` result: one step (2^-8 relative for bf16) on a few elements.
const HALF_ROUNDED: f64 = 5e-4;

/// The tolerance of a result in `dtype`.
fn tol_of(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-14,
        DType::F32 => F32_TOL,
        _ => HALF_ROUNDED,
    }
}

/// The two ops.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// `upsample_nearest2x`.
    Upsample,
    /// `avg_pool2x`.
    AvgPool,
}

impl Op {
    /// The op under test.
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Op::Upsample => upsample_nearest2x(x).unwrap(),
            Op::AvgPool => avg_pool2x(x).unwrap(),
        }
    }

    /// candle's op, computed in `f32` for a half-precision `x` (`f64` for `f64`) and cast back to its dtype.
    fn reference(self, x: &Tensor) -> Tensor {
        let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
        let (_, _, h, w) = x.dims4().unwrap();
        let x_work = x.to_dtype(work).unwrap();
        let y = match self {
            Op::Upsample => x_work.upsample_nearest2d(2 * h, 2 * w),
            Op::AvgPool => x_work.avg_pool2d(2),
        };
        y.unwrap().to_dtype(x.dtype()).unwrap()
    }

    /// The output shape for an input of `shape`.
    fn out_shape(self, shape: &[usize]) -> Vec<usize> {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        match self {
            Op::Upsample => vec![n, c, 2 * h, 2 * w],
            Op::AvgPool => vec![n, c, h / 2, w / 2],
        }
    }
}

/// `(y, dx)` of `f` (the op or the reference) for `loss = sum(y * r)`, `x` taken from `source` as `input`.
fn run(source: &Var, input: Input, batch: usize, r: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> [Tensor; 2] {
    let y = f(&input.take(source.as_tensor(), batch));
    let loss = y.to_dtype(r.dtype()).unwrap().mul(r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    [y, grads.get(source.as_tensor()).expect("a gradient").clone()]
}

/// Checks `op` against the reference for `x` of `shape` with `N(0, 1)` values, in `dtype` on `device` (the
/// reference on the CPU); returns the largest relative error.
fn check_case(op: Op, shape: &[usize], input: Input, dtype: DType, device: &Device) -> f64 {
    let seed = shape.iter().fold(23u64, |s, &d| s * 31 + d as u64);
    let r_dtype = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let source = Var::from_tensor(&randn(&input.source_shape(shape), seed, 1.0, 0.0, dtype, device)).unwrap();
    let r = randn(&op.out_shape(shape), seed + 1, 1.0, 0.0, r_dtype, device);
    let got = run(&source, input, shape[0], &r, |x| op.apply(x));
    let host = Var::from_tensor(&source.to_device(&Device::Cpu).unwrap()).unwrap();
    let want = run(&host, input, shape[0], &r.to_device(&Device::Cpu).unwrap(), |x| op.reference(x));
    let mut worst = 0f64;
    for (name, (got, want)) in ["y", "dx"].iter().zip(got.iter().zip(&want)) {
        assert_eq!(got.dtype(), dtype, "{name}: dtype");
        assert_eq!(want.dtype(), dtype, "{name}: reference dtype");
        let (rel, max) = diff(got, want);
        let tol = tol_of(dtype);
        println!("RESAMPLE {op:?} {shape:?} {input:?} [{:?} {dtype:?}] {name}: rel = {rel:.2e}, max abs = {max:.2e}", device.location());
        assert!(rel <= tol, "{op:?} {shape:?} {input:?} {dtype:?}: {name}: relative error {rel:.3e} > {tol:e}");
        worst = worst.max(rel);
    }
    worst
}

/// Shapes both ops take (even `H` and `W`).
const SHAPES: [&[usize]; 3] = [&[2, 3, 4, 6], &[1, 8, 16, 16], &[3, 2, 2, 10]];
/// A shape only the up-sampling takes.
const ODD: &[usize] = &[1, 5, 7, 9];

/// Every case of `op` in `dtype` on `device`, each layout of input.
fn check_all(op: Op, dtype: DType, device: &Device) {
    let odd = (op == Op::Upsample).then_some(ODD);
    for shape in SHAPES.into_iter().chain(odd) {
        for input in [Input::Contiguous, Input::Offset, Input::Transposed] {
            check_case(op, shape, input, dtype, device);
        }
    }
}

#[test]
fn upsample_matches_candle() {
    check_all(Op::Upsample, test_dtype(), &test_device());
}

#[test]
fn avg_pool_matches_candle() {
    check_all(Op::AvgPool, test_dtype(), &test_device());
}

#[test]
fn f16_matches_candle() {
    check_all(Op::Upsample, DType::F16, &test_device());
    check_all(Op::AvgPool, DType::F16, &test_device());
}

#[test]
fn f64_matches_candle() {
    check_all(Op::Upsample, DType::F64, &Device::Cpu);
    check_all(Op::AvgPool, DType::F64, &Device::Cpu);
}

#[test]
fn odd_sizes_other_ranks_and_dtypes_are_errors() {
    let (dtype, device) = (test_dtype(), test_device());
    for shape in [[1, 2, 5, 6], [1, 2, 4, 7]] {
        let msg = avg_pool2x(&Tensor::zeros(&shape, dtype, &device).unwrap()).unwrap_err().to_string();
        assert!(msg.contains("avg_pool2x") && msg.contains(&format!("{shape:?}")), "{msg}");
    }
    let x = Tensor::zeros((2, 4, 6), dtype, &device).unwrap();
    for msg in [upsample_nearest2x(&x).unwrap_err().to_string(), avg_pool2x(&x).unwrap_err().to_string()] {
        assert!(msg.contains("[2, 4, 6]"), "{msg}");
    }
    let x = Tensor::zeros((1, 2, 4, 4), DType::U32, &device).unwrap();
    let msg = upsample_nearest2x(&x).unwrap_err().to_string();
    assert!(msg.contains("upsample_nearest2x: unsupported dtype"), "{msg}");
}

/// More small-side elements than the CUDA kernels' largest grid (2^16 blocks of 256 threads) covers in one
/// pass: the grid-stride loops must reach every element. Values with 8 significant bits, so that a 2x2
/// block of equal values sums exactly and `avg_pool2x(upsample_nearest2x(x)) == x` in every dtype; the
/// up-sampling against candle's (a copy, no arithmetic) on the test device.
#[test]
fn grid_stride_covers_large_tensors() {
    let (dtype, device) = (test_dtype(), test_device());
    let shape = [1, 1, 2, (1 << 23) + 2050];
    let x = randn(&shape, 7, 1.0, 0.0, DType::BF16, &device).to_dtype(dtype).unwrap();
    let up = upsample_nearest2x(&x).unwrap();
    let want = x.upsample_nearest2d(4, 2 * shape[3]).unwrap();
    let all_equal = |a: &Tensor, b: &Tensor| a.eq(b).unwrap().min_all().unwrap().to_scalar::<u8>().unwrap() == 1;
    assert!(all_equal(&up, &want), "upsample_nearest2x differs from candle's");
    assert!(all_equal(&avg_pool2x(&up).unwrap(), &x), "avg_pool2x(upsample_nearest2x(x)) != x");
    println!("RESAMPLE {shape:?} [{:?} {dtype:?}]: both kernels cover all {} small-side elements", device.location(), x.elem_count());
}
