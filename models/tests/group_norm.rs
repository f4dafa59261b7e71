//! `boot_models::GroupNorm` (one fused op with a hand-written backward) against the tensor-op formula it
//! replaced, written out below: the output and the gradients of `x`, `weight` and `bias` of
//! `sum(y * r)` for a random `r`, on inputs that are contiguous, contiguous with a start offset (a narrowed
//! tensor) and transposed.
//!
//! The runs go to `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`) with `f32` parameters (the
//! master weights of a mixed-precision run); the `f64` runs stay on the CPU. Tolerances, relative L2 error
//! against the formula run in the same dtype:
//!
//! - `f32`: 1e-5 for everything (the two compute the same sums in another order);
//! - `bf16`: the output and `dx` are rounded to bf16 once at the end by both, so an element differs by one
//!   bf16 step (up to 2^-8 relative) where the two f32 results fall on either side of a rounding boundary:
//!   [`BF16_ROUNDED`] (measured on the CPU: up to 3.0e-5, one element in 32768 one step off); the parameter
//!   gradients are `f32` computed from the same bf16 values, 1e-5;
//! - `f64`: 1e-12.

mod common;

use boot_sdk::candle::{DType, Device, Tensor, Var};
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_models::GroupNorm;
use common::inputs::{randn, Input};
use common::*;

const EPS: f64 = 1e-5;
/// Relative L2 error of a bf16 output: one bf16 step on a few percent of the elements. Truncating instead of
/// rounding to nearest (half a step on average on every element) would be about 1e-3.
const BF16_ROUNDED: f64 = 5e-4;

/// The tensor-op group norm that `GroupNorm::forward` used to be.
fn reference(x: &Tensor, w: &Tensor, b: &Tensor, groups: usize) -> Tensor {
    let dims = x.dims().to_vec();
    let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let xg = x.to_dtype(work).unwrap().reshape((dims[0], groups, ())).unwrap();
    let mean = xg.mean_keepdim(2).unwrap();
    let xc = xg.broadcast_sub(&mean).unwrap();
    let var = xc.sqr().unwrap().mean_keepdim(2).unwrap();
    let xn = xc.broadcast_div(&(var + EPS).unwrap().sqrt().unwrap()).unwrap().reshape(dims.as_slice()).unwrap();
    let mut shape = vec![1usize; dims.len()];
    shape[1] = dims[1];
    let w = w.to_dtype(work).unwrap().reshape(shape.as_slice()).unwrap();
    let b = b.to_dtype(work).unwrap().reshape(shape.as_slice()).unwrap();
    xn.broadcast_mul(&w).unwrap().broadcast_add(&b).unwrap().to_dtype(x.dtype()).unwrap()
}

/// `(y, dx, dweight, dbias)` of `norm` (the fused op or the reference) for `loss = sum(y * r)`.
fn run(source: &Var, input: Input, batch: usize, params: [&Var; 2], r: &Tensor, norm: impl Fn(&Tensor) -> Tensor) -> [Tensor; 4] {
    let x = input.take(source.as_tensor(), batch);
    let y = norm(&x);
    let loss = y.to_dtype(r.dtype()).unwrap().mul(r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let grad = |v: &Var| grads.get(v.as_tensor()).expect("a gradient").clone();
    [y, grad(source), grad(params[0]), grad(params[1])]
}

/// Checks the fused norm against the reference for `x` of `shape` (the norm's input) with `groups` groups,
/// values `shift + scale * N(0, 1)`, in `dtype` on `device`; returns the largest relative error.
fn check_case(shape: &[usize], groups: usize, input: Input, (scale, shift): (f64, f64), dtype: DType, device: &Device) -> f64 {
    let seed = shape.iter().fold(groups as u64, |s, &d| s * 31 + d as u64);
    let param_dtype = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let channels = shape[1];
    let vm = VarMap::new();
    let gn = GroupNorm::new(VarBuilder::from_varmap(&vm, param_dtype, device), channels, groups, EPS).unwrap();
    let (weight, bias) = {
        let vars = vm.data().lock().unwrap();
        (vars["weight"].clone(), vars["bias"].clone())
    };
    weight.set(&randn(&[channels], seed + 1, 0.5, 1.0, param_dtype, device)).unwrap();
    bias.set(&randn(&[channels], seed + 2, 0.5, 0.0, param_dtype, device)).unwrap();
    let source = Var::from_tensor(&randn(&input.source_shape(shape), seed + 3, scale, shift, dtype, device)).unwrap();
    let r = randn(shape, seed + 4, 1.0, 0.0, param_dtype, device);
    let params = [&weight, &bias];
    let fused = run(&source, input, shape[0], params, &r, |x| gn.forward(x).unwrap());
    let want = run(&source, input, shape[0], params, &r, |x| reference(x, weight.as_tensor(), bias.as_tensor(), groups));
    let mut worst = 0f64;
    for (name, (got, want)) in ["y", "dx", "dweight", "dbias"].iter().zip(fused.iter().zip(&want)) {
        assert_eq!(got.dtype(), want.dtype(), "{name}: dtype");
        let tol = match (dtype, got.dtype()) {
            (DType::F64, _) => 1e-12,
            (_, DType::BF16) => BF16_ROUNDED,
            _ => 1e-5,
        };
        let (rel, max) = diff(got, want);
        println!("GROUPNORM {shape:?} G={groups} {input:?} [{:?} {dtype:?}] {name}: rel = {rel:.2e}, max abs = {max:.2e}", device.location());
        assert!(rel <= tol, "{shape:?} G={groups} {input:?} {dtype:?}: {name}: relative error {rel:.3e} > {tol:e}");
        worst = worst.max(rel);
    }
    worst
}

const CASES: [(&[usize], usize); 8] = [
    (&[2, 8, 5, 3], 4),
    (&[3, 6, 7], 3),
    (&[2, 4, 3, 3], 1),
    (&[4, 6], 2),
    (&[2, 6, 4, 4], 6),
    (&[2, 64, 16, 16], 32),
    (&[1, 8, 40, 40], 2),
    (&[1, 96, 3, 3], 2),
];

#[test]
fn fused_matches_tensor_ops() {
    let (dtype, device) = (test_dtype(), test_device());
    for (shape, groups) in CASES {
        check_case(shape, groups, Input::Contiguous, (1.5, 0.3), dtype, &device);
    }
}

#[test]
fn fused_matches_tensor_ops_f64() {
    for (shape, groups) in CASES {
        check_case(shape, groups, Input::Contiguous, (1.5, 0.3), DType::F64, &Device::Cpu);
    }
}

#[test]
fn offset_and_strided_inputs() {
    let (dtype, device) = (test_dtype(), test_device());
    for input in [Input::Offset, Input::Transposed] {
        check_case(&[2, 8, 5, 3], 4, input, (1.5, 0.3), dtype, &device);
        check_case(&[3, 6, 7], 3, input, (1.5, 0.3), dtype, &device);
        check_case(&[2, 8, 5, 3], 4, input, (1.5, 0.3), DType::F64, &Device::Cpu);
    }
}

/// A mean far from zero (1000 +- 1): the fused op against the formula in f64 on the same f32 values, so
/// that neither method's f32 rounding hides in the reference.
#[test]
fn large_mean_keeps_precision() {
    if skip_in_bf16("large_mean_keeps_precision", "bf16 has no digits left for 1000 +- 1") {
        return;
    }
    let (shape, groups) = ([2usize, 8, 6, 6], 4);
    let device = test_device();
    let vm = VarMap::new();
    let gn = GroupNorm::new(VarBuilder::from_varmap(&vm, DType::F32, &device), 8, groups, EPS).unwrap();
    let x = randn(&shape, 7, 1.0, 1000.0, DType::F32, &device);
    let y = gn.forward(&x).unwrap();
    let vars = vm.data().lock().unwrap();
    let want = reference(&host_f64(&x), &host_f64(vars["weight"].as_tensor()), &host_f64(vars["bias"].as_tensor()), groups);
    let (rel, max) = diff(&y, &want);
    let old = diff(&reference(&x, vars["weight"].as_tensor(), vars["bias"].as_tensor(), groups), &want).0;
    let at = device.location();
    println!("GROUPNORM mean 1000 [{at:?} F32] y vs f64 formula: rel = {rel:.2e}, max abs = {max:.2e} (the formula in f32: rel = {old:.2e})");
    assert!(rel <= 1e-5, "relative error {rel:.3e} against the f64 formula");
}

#[test]
fn bad_shapes_are_errors() {
    let device = test_device();
    let vm = VarMap::new();
    let gn = GroupNorm::new(VarBuilder::from_varmap(&vm, DType::F32, &device), 8, 4, EPS).unwrap();
    let msg = |x: Tensor| gn.forward(&x).unwrap_err().to_string();
    assert!(msg(Tensor::zeros(8, DType::F32, &device).unwrap()).contains("expected [B, C, ..]"));
    assert!(msg(Tensor::zeros((2, 12, 3), DType::F32, &device).unwrap()).contains("shape"));
    assert!(msg(Tensor::zeros((2, 8, 3), DType::U32, &device).unwrap()).contains("unsupported dtype"));
    assert!(GroupNorm::new(VarBuilder::from_varmap(&vm, DType::F32, &device).pp("g3"), 8, 3, EPS).is_err());
}
