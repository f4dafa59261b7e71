//! `boot_sdk::ops::silu` (one op with a one-op backward, `sdk/src/ops/silu_op.rs`) against candle's own
//! `Tensor::silu` and its autodiff: the output and the gradient of `sum(y * r)` for a random `r`, on inputs
//! that are contiguous, contiguous with a start offset (a narrowed tensor) and transposed; large `|x|`
//! (up to 1000, where a naive `exp` overflows) against the definition in f64; a tensor larger than one
//! launch's grid (the CUDA kernels' grid-stride loops).
//!
//! The runs go to `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`); `f16` runs go to the same
//! device, the `f64` runs stay on the CPU. The reference for a half-precision input is candle's `silu` and
//! autodiff in f32 on the same (rounded) values and output gradient, rounded once to the input's dtype,
//! which is what the op computes. Tolerances, relative L2 error:
//!
//! - `f32`: [`F32_TOL`] = 1e-6 (`x * sigmoid(x)` against candle's `x / (1 + exp(-x))`: the same function,
//!   other f32 roundings);
//! - `bf16`, `f16`: both results are rounded once, so an element differs by one step where the two f32
//!   results fall on either side of a rounding boundary: [`HALF_ROUNDED`];
//! - `f64`: 1e-14.
//!
//! Run with `--nocapture` to see every number.

mod common;

use boot_sdk::candle::{DType, Device, Tensor, Var};
use boot_sdk::ops::silu;
use common::inputs::{randn, Input};
use common::*;

/// Relative L2 error in `f32`.
const F32_TOL: f64 = 1e-6;
/// Relative L2 error of a `bf16` or `f16` result: one step (2^-8 relative for bf16) on a few elements.
/// Truncating instead of rounding to nearest would be about 1e-3 for bf16.
const HALF_ROUNDED: f64 = 5e-4;

/// The tolerance of a result in `dtype`.
fn tol_of(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-14,
        DType::F32 => F32_TOL,
        _ => HALF_ROUNDED,
    }
}

/// candle's `silu`, computed in `f32` for a half-precision `x` (`f64` for `f64`) and cast back to its dtype.
fn reference(x: &Tensor) -> Tensor {
    let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    x.to_dtype(work).unwrap().silu().unwrap().to_dtype(x.dtype()).unwrap()
}

/// `(y, dx)` of `f` (the op or the reference) for `loss = sum(y * r)`, `x` taken from `source` as `input`.
fn run(source: &Var, input: Input, batch: usize, r: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> [Tensor; 2] {
    let y = f(&input.take(source.as_tensor(), batch));
    let loss = y.to_dtype(r.dtype()).unwrap().mul(r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    [y, grads.get(source.as_tensor()).expect("a gradient").clone()]
}

/// Checks the op against the reference for `x` of `shape` with values `scale * N(0, 1)`, in `dtype` on
/// `device`; returns the largest relative error.
fn check_case(shape: &[usize], input: Input, scale: f64, dtype: DType, device: &Device) -> f64 {
    let seed = shape.iter().fold(17u64, |s, &d| s * 31 + d as u64);
    let r_dtype = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let source = Var::from_tensor(&randn(&input.source_shape(shape), seed, scale, 0.0, dtype, device)).unwrap();
    let r = randn(shape, seed + 1, 1.0, 0.0, r_dtype, device);
    let got = run(&source, input, shape[0], &r, |x| silu(x).unwrap());
    let want = run(&source, input, shape[0], &r, reference);
    let mut worst = 0f64;
    for (name, (got, want)) in ["y", "dx"].iter().zip(got.iter().zip(&want)) {
        assert_eq!(got.dtype(), dtype, "{name}: dtype");
        assert_eq!(want.dtype(), dtype, "{name}: reference dtype");
        let (rel, max) = diff(got, want);
        let tol = tol_of(dtype);
        println!("SILU {shape:?} {input:?} [{:?} {dtype:?}] {name}: rel = {rel:.2e}, max abs = {max:.2e}", device.location());
        assert!(rel <= tol, "{shape:?} {input:?} {dtype:?}: {name}: relative error {rel:.3e} > {tol:e}");
        worst = worst.max(rel);
    }
    worst
}

const SHAPES: [&[usize]; 5] = [&[2, 8, 16, 16], &[3, 7], &[1, 5, 33, 9], &[4, 1, 1], &[2, 64, 32, 32]];

#[test]
fn matches_candle_silu() {
    let (dtype, device) = (test_dtype(), test_device());
    for shape in SHAPES {
        check_case(shape, Input::Contiguous, 3.0, dtype, &device);
    }
}

#[test]
fn matches_candle_silu_f16() {
    let device = test_device();
    for shape in SHAPES {
        check_case(shape, Input::Contiguous, 3.0, DType::F16, &device);
    }
}

#[test]
fn matches_candle_silu_f64() {
    for shape in SHAPES {
        check_case(shape, Input::Contiguous, 3.0, DType::F64, &Device::Cpu);
    }
}

#[test]
fn offset_and_strided_inputs() {
    let (dtype, device) = (test_dtype(), test_device());
    for input in [Input::Offset, Input::Transposed] {
        check_case(&[2, 8, 5, 3], input, 3.0, dtype, &device);
        check_case(&[3, 6, 7], input, 3.0, DType::F16, &device);
        check_case(&[2, 8, 5, 3], input, 3.0, DType::F64, &Device::Cpu);
    }
}

/// `|x|` up to 1000, where `exp(|x|)` overflows f32 (above 88.7) and f16 (above 11.1), against the
/// definition in f64 on the same (rounded) values, element by element: `|got - want| <= rel * |want| +
/// floor`, `rel` half a step of the dtype with a margin (1e-6 for f32), `floor` below the dtype's smallest
/// normal value (results that underflow). The values avoid the zero of the derivative (x = -1.278..), where
/// a relative error per element means nothing.
#[test]
fn large_inputs_stay_finite() {
    const X: [f64; 22] = [-1000., -100., -89., -88., -50., -30., -20., -10., -3., -0.5, 0., 0.5, 3., 10., 11.5, 20., 30., 50., 88., 89., 100., 1000.];
    let checks = [(test_dtype(), test_device()), (DType::F16, test_device()), (DType::F64, Device::Cpu)];
    for (dtype, device) in checks {
        let (rel, floor) = match dtype {
            DType::F64 => (1e-14, 1e-300),
            DType::F32 => (F32_TOL, 1e-37),
            DType::BF16 => (2f64.powi(-8), 1e-37),
            _ => (2f64.powi(-10), 6.2e-5),
        };
        let source = Var::from_tensor(&Tensor::new(&X, &Device::Cpu).unwrap().to_dtype(dtype).unwrap().to_device(&device).unwrap()).unwrap();
        // Gradients exact in every dtype: 1.5 and -0.75 alternately.
        let r: Vec<f64> = (0..X.len()).map(|i| if i % 2 == 0 { 1.5 } else { -0.75 }).collect();
        let r_dtype = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
        let r_t = Tensor::new(r.as_slice(), &Device::Cpu).unwrap().to_dtype(r_dtype).unwrap().to_device(&device).unwrap();
        let [y, dx] = run(&source, Input::Contiguous, X.len(), &r_t, |x| silu(x).unwrap());
        let (y, dx, x) = (host_vec(&y), host_vec(&dx), host_vec(source.as_tensor()));
        for i in 0..X.len() {
            let (v, s) = (x[i], sigmoid(x[i]));
            for (name, got, want) in [("y", y[i], v * s), ("dx", dx[i], r[i] * s * (1.0 + v * (1.0 - s)))] {
                assert!(got.is_finite(), "{dtype:?}: {name}({v}) = {got}");
                let err = (got - want).abs();
                assert!(err <= rel * want.abs() + floor, "{dtype:?}: {name}({v}) = {got:e}, expected {want:e} (error {err:.2e})");
            }
        }
        println!("SILU |x| <= 1000 [{:?} {dtype:?}]: finite, within {rel:.1e} relative (+ {floor:e}) of the f64 definition", device.location());
    }
}

/// The logistic function in f64, without overflow.
fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// More elements than the CUDA kernels' largest grid (2^16 blocks of 256 threads) covers in one pass: the
/// grid-stride loops must reach every element (an unwritten output element would hold garbage).
#[test]
fn grid_stride_covers_large_tensors() {
    let (dtype, device) = (test_dtype(), test_device());
    let n = (1 << 24) + 4099;
    let x = Var::from_tensor(&randn(&[n], 5, 3.0, 0.0, dtype, &device)).unwrap();
    let r = randn(&[n], 6, 1.0, 0.0, DType::F32, &device);
    let got = run(&x, Input::Contiguous, n, &r, |x| silu(x).unwrap());
    let want = run(&x, Input::Contiguous, n, &r, reference);
    for (name, (got, want)) in ["y", "dx"].iter().zip(got.iter().zip(&want)) {
        // On the device in f64: no host copy of 2^24 values.
        let (got, want) = (got.to_dtype(DType::F64).unwrap(), want.to_dtype(DType::F64).unwrap());
        let norm = |t: &Tensor| t.sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f64>().unwrap();
        let rel = norm(&(&got - &want).unwrap()) / norm(&want);
        println!("SILU [{n}] [{:?} {dtype:?}] {name}: rel = {rel:.2e}", device.location());
        assert!(rel <= tol_of(dtype), "{name}: relative error {rel:.3e}");
    }
}

#[test]
fn unsupported_dtype_is_an_error() {
    let x = Tensor::zeros((2, 3), DType::U32, &test_device()).unwrap();
    let msg = silu(&x).unwrap_err().to_string();
    assert!(msg.contains("silu: unsupported dtype"), "{msg}");
}
