//! `boot_models::GroupNorm::forward_modulated` (`act(norm(x) * (1 + scale) + shift)` as one fused op with a
//! hand-written backward) against the tensor ops it replaced, written out below: the output and the
//! gradients of `x`, `weight`, `bias`, `scale` and `shift` of `sum(y * r)` for a random `r`, with and
//! without the modulation, with and without SiLU, on contiguous inputs, inputs with a start offset (a
//! narrowed tensor) and transposed ones.
//!
//! The runs go to `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`) with `f32` parameters,
//! `scale` and `shift` (the master weights and the `f32` embedding of a mixed-precision run); the `f64` runs
//! stay on the CPU. Tolerances, relative L2 error against the tensor ops run in the same dtype (computing in
//! `f32`, or `f64`, and rounding once to the input's dtype):
//!
//! - `f32`: 1e-5 for everything (the same arithmetic in another order);
//! - `bf16`: the output and `dx` are rounded to bf16 once at the end by both, so an element differs by one
//!   bf16 step (up to 2^-8 relative) where the two f32 results fall on either side of a rounding boundary:
//!   [`BF16_ROUNDED`]; the parameter, scale and shift gradients are `f32` computed from the same bf16 values,
//!   1e-5;
//! - `f64`: 1e-12.

mod common;

use boot_sdk::candle::{DType, Device, Tensor, Var};
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_models::GroupNorm;
use common::inputs::{randn, Input};
use common::*;

const EPS: f64 = 1e-5;
/// Relative L2 error of a bf16 output: one bf16 step on a few elements in a thousand (as `group_norm.rs`).
const BF16_ROUNDED: f64 = 5e-4;

/// What follows the norm.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// `* (1 + scale) + shift`.
    modulated: bool,
    /// SiLU at the end.
    silu: bool,
}

const MODES: [Mode; 4] = [
    Mode { modulated: false, silu: false },
    Mode { modulated: false, silu: true },
    Mode { modulated: true, silu: false },
    Mode { modulated: true, silu: true },
];

/// `[1, C, 1, ..]`: the shape that broadcasts a per-channel vector over an input of `dims`.
fn channel_shape(dims: &[usize], batch: usize) -> Vec<usize> {
    let mut shape = vec![1usize; dims.len()];
    shape[0] = batch;
    shape[1] = dims[1];
    shape
}

/// The tensor ops that the fused op replaced: group norm, `broadcast_mul(scale + 1)`, `broadcast_add(shift)`,
/// SiLU, in `f32` (`f64` for `f64`), rounded once to `x`'s dtype.
fn reference(x: &Tensor, [w, b]: [&Tensor; 2], scale_shift: Option<[&Tensor; 2]>, silu: bool, groups: usize) -> Tensor {
    let dims = x.dims().to_vec();
    let work = if x.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let xg = x.to_dtype(work).unwrap().reshape((dims[0], groups, ())).unwrap();
    let mean = xg.mean_keepdim(2).unwrap();
    let xc = xg.broadcast_sub(&mean).unwrap();
    let var = xc.sqr().unwrap().mean_keepdim(2).unwrap();
    let xn = xc.broadcast_div(&(var + EPS).unwrap().sqrt().unwrap()).unwrap().reshape(dims.as_slice()).unwrap();
    let per_channel = |t: &Tensor, batch: usize| t.to_dtype(work).unwrap().reshape(channel_shape(&dims, batch)).unwrap();
    let mut y = xn.broadcast_mul(&per_channel(w, 1)).unwrap().broadcast_add(&per_channel(b, 1)).unwrap();
    if let Some([scale, shift]) = scale_shift {
        let scale = (per_channel(scale, dims[0]) + 1.0).unwrap();
        y = y.broadcast_mul(&scale).unwrap().broadcast_add(&per_channel(shift, dims[0])).unwrap();
    }
    if silu {
        y = y.silu().unwrap();
    }
    y.to_dtype(x.dtype()).unwrap()
}

/// The variables of one case: the input's source, weight, bias, scale, shift.
struct Vars {
    source: Var,
    weight: Var,
    bias: Var,
    scale: Var,
    shift: Var,
}

/// `[y, dx, dweight, dbias, dscale, dshift]` (the last two only when modulated) of `norm` for
/// `loss = sum(y * r)`.
fn run(v: &Vars, input: Input, batch: usize, modulated: bool, r: &Tensor, norm: impl Fn(&Tensor) -> Tensor) -> Vec<Tensor> {
    let x = input.take(v.source.as_tensor(), batch);
    let y = norm(&x);
    let loss = y.to_dtype(r.dtype()).unwrap().mul(r).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let mut vars = vec![&v.source, &v.weight, &v.bias];
    if modulated {
        vars.extend([&v.scale, &v.shift]);
    }
    let mut out = vec![y];
    out.extend(vars.into_iter().map(|var| grads.get(var.as_tensor()).expect("a gradient").clone()));
    out
}

/// Checks the fused op against the reference for `x` of `shape` with `groups` groups, values
/// `1.5 * N(0, 1) + 0.3`, `scale` and `shift` of shape `[B, C, 1, ..]` (`[B, C]` when `flat_modulation`),
/// in `dtype` on `device`; returns the largest relative error.
fn check_case(shape: &[usize], groups: usize, input: Input, mode: Mode, flat_modulation: bool, dtype: DType, device: &Device) -> f64 {
    let seed = shape.iter().fold(groups as u64, |s, &d| s * 31 + d as u64);
    let param_dtype = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let (batch, channels) = (shape[0], shape[1]);
    let vm = VarMap::new();
    let gn = GroupNorm::new(VarBuilder::from_varmap(&vm, param_dtype, device), channels, groups, EPS).unwrap();
    let (weight, bias) = {
        let vars = vm.data().lock().unwrap();
        (vars["weight"].clone(), vars["bias"].clone())
    };
    weight.set(&randn(&[channels], seed + 1, 0.5, 1.0, param_dtype, device)).unwrap();
    bias.set(&randn(&[channels], seed + 2, 0.5, 0.0, param_dtype, device)).unwrap();
    let mod_shape = if flat_modulation { vec![batch, channels] } else { channel_shape(shape, batch) };
    let var = |t: Tensor| Var::from_tensor(&t).unwrap();
    let v = Vars {
        source: var(randn(&input.source_shape(shape), seed + 3, 1.5, 0.3, dtype, device)),
        weight,
        bias,
        scale: var(randn(&mod_shape, seed + 4, 0.5, 0.0, param_dtype, device)),
        shift: var(randn(&mod_shape, seed + 5, 0.5, 0.0, param_dtype, device)),
    };
    let r = randn(shape, seed + 6, 1.0, 0.0, param_dtype, device);
    let modulation = mode.modulated.then_some([v.scale.as_tensor(), v.shift.as_tensor()]);
    let fused = run(&v, input, batch, mode.modulated, &r, |x| gn.forward_modulated(x, modulation.map(|[s, t]| (s, t)), mode.silu).unwrap());
    let want = run(&v, input, batch, mode.modulated, &r, |x| reference(x, [v.weight.as_tensor(), v.bias.as_tensor()], modulation, mode.silu, groups));
    let mut worst = 0f64;
    for (name, (got, want)) in ["y", "dx", "dweight", "dbias", "dscale", "dshift"].iter().zip(fused.iter().zip(&want)) {
        assert_eq!(got.dtype(), want.dtype(), "{name}: dtype");
        assert_eq!(got.dims(), want.dims(), "{name}: shape");
        let tol = match (dtype, got.dtype()) {
            (DType::F64, _) => 1e-12,
            (_, DType::BF16) => BF16_ROUNDED,
            _ => 1e-5,
        };
        let (rel, max) = diff(got, want);
        println!("GNMOD {shape:?} G={groups} {input:?} {mode:?} [{:?} {dtype:?}] {name}: rel = {rel:.2e}, max abs = {max:.2e}", device.location());
        assert!(rel <= tol, "{shape:?} G={groups} {input:?} {mode:?} {dtype:?}: {name}: relative error {rel:.3e} > {tol:e}");
        worst = worst.max(rel);
    }
    worst
}

const CASES: [(&[usize], usize); 3] = [(&[2, 8, 5, 3], 4), (&[3, 64, 8, 8], 32), (&[3, 6, 7], 3)];

#[test]
fn fused_matches_tensor_ops() {
    let (dtype, device) = (test_dtype(), test_device());
    for (shape, groups) in CASES {
        for mode in MODES {
            check_case(shape, groups, Input::Contiguous, mode, false, dtype, &device);
        }
    }
}

#[test]
fn fused_matches_tensor_ops_f64() {
    for (shape, groups) in CASES {
        for mode in MODES {
            check_case(shape, groups, Input::Contiguous, mode, false, DType::F64, &Device::Cpu);
        }
    }
}

#[test]
fn offset_and_strided_inputs_and_flat_modulation() {
    let (dtype, device) = (test_dtype(), test_device());
    for input in [Input::Offset, Input::Transposed] {
        for mode in MODES {
            check_case(&[2, 8, 5, 3], 4, input, mode, true, dtype, &device);
            check_case(&[2, 8, 5, 3], 4, input, mode, false, DType::F64, &Device::Cpu);
        }
    }
}

/// A scale and shift of one sample apply to every sample, as the same values repeated.
#[test]
fn batch_of_one_modulation_broadcasts() {
    let (dtype, device) = (test_dtype(), test_device());
    let vm = VarMap::new();
    let gn = GroupNorm::new(VarBuilder::from_varmap(&vm, DType::F32, &device), 8, 4, EPS).unwrap();
    let x = randn(&[3, 8, 4, 4], 1, 1.0, 0.0, dtype, &device);
    let (scale, shift) = (randn(&[1, 8, 1, 1], 2, 0.5, 0.0, DType::F32, &device), randn(&[1, 8, 1, 1], 3, 0.5, 0.0, DType::F32, &device));
    let got = gn.forward_modulated(&x, Some((&scale, &shift)), true).unwrap();
    let repeat = |t: &Tensor| t.repeat((3, 1, 1, 1)).unwrap();
    let want = gn.forward_modulated(&x, Some((&repeat(&scale), &repeat(&shift))), true).unwrap();
    assert_eq!(diff(&got, &want).1, 0.0);
}

#[test]
fn bad_modulation_shapes_are_errors() {
    let device = test_device();
    let vm = VarMap::new();
    let gn = GroupNorm::new(VarBuilder::from_varmap(&vm, DType::F32, &device), 8, 4, EPS).unwrap();
    let x = Tensor::zeros((2, 8, 3, 3), DType::F32, &device).unwrap();
    let ok = Tensor::zeros((2, 8), DType::F32, &device).unwrap();
    for bad in [(2, 16), (3, 8), (8, 2)] {
        let bad = Tensor::zeros(bad, DType::F32, &device).unwrap();
        assert!(gn.forward_modulated(&x, Some((&bad, &ok)), true).is_err(), "scale {:?}", bad.dims());
        assert!(gn.forward_modulated(&x, Some((&ok, &bad)), false).is_err(), "shift {:?}", bad.dims());
    }
}
