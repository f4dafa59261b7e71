//! Fixture loading and comparisons shared by the parity tests (fixtures in `tests/fixtures/<family>/`; see
//! their READMEs), on top of the sdk tests' helpers (device and dtype, inputs, `diff`), one copy for every
//! test crate.

#![allow(dead_code)]

#[path = "../../../sdk/tests/common/mod.rs"]
mod base;

use std::collections::HashMap;
use std::path::PathBuf;

use boot_models::load_strict;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::candle_nn::VarBuilder;
use boot_sdk::serde_json::{self, Value};
pub use base::*;

/// Required relative L2 error against the official float32 outputs (in `f32`; see `device.rs` for `bf16`).
pub const TOL: f64 = 1e-4;

/// `models/tests/fixtures/<family>/<file>`.
pub fn fixture(family: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(family).join(file)
}

/// The io tensors of a fixture.
pub fn io(family: &str, name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&fixture(family, &format!("{name}.io.safetensors")), &Device::Cpu).expect("io fixture")
}

/// The parsed `config.json` of a fixture.
pub fn config(family: &str, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(family, &format!("{name}.config.json"))).expect("config")).expect("json")
}

/// Builds a module from a fixture's weights, strictly (every tensor used, shapes checked), in `dtype` on
/// `device`.
pub fn load_on<T>(family: &str, name: &str, dtype: DType, device: &Device, build: impl FnOnce(VarBuilder) -> boot_sdk::candle::Result<T>) -> T {
    let path = fixture(family, &format!("{name}.safetensors"));
    let tensors = boot_sdk::io::load_safetensors(&path, &Device::Cpu).expect("weights fixture");
    load_strict(name, tensors, dtype, device, |vb| Ok(build(vb)?)).expect("strict load")
}

/// [`load_on`] the test device in the test dtype.
pub fn load<T>(family: &str, name: &str, build: impl FnOnce(VarBuilder) -> boot_sdk::candle::Result<T>) -> T {
    load_on(family, name, test_dtype(), &test_device(), build)
}

/// [`load_on`] the CPU in `f64`, for the ground-truth runs.
pub fn load_f64<T>(family: &str, name: &str, build: impl FnOnce(VarBuilder) -> boot_sdk::candle::Result<T>) -> T {
    load_on(family, name, DType::F64, &Device::Cpu, build)
}

/// Tensor `k` of `m`.
pub fn t<'a>(m: &'a HashMap<String, Tensor>, k: &str) -> &'a Tensor {
    m.get(k).unwrap_or_else(|| panic!("io tensor {k}"))
}

/// `x` in `dtype`.
pub fn cast(x: &Tensor, dtype: DType) -> Tensor {
    x.to_dtype(dtype).unwrap()
}

/// Integer class labels (`i64`) as the `Option<u32>` labels the models take.
pub fn labels(x: &Tensor) -> Vec<Option<u32>> {
    x.to_dtype(DType::I64).unwrap().to_vec1::<i64>().unwrap().into_iter().map(|v| Some(v as u32)).collect()
}

/// Asserts `||out - ref_f32|| / ||ref_f32|| <= TOL` (`f32`; [`BF16_REL_BLOCK`] in `bf16`) for a block's
/// output and prints the numbers (run with `--nocapture`).
pub fn check(label: &str, out: &Tensor, ref_f32: &Tensor, ref_f64: &Tensor) {
    check_tol(label, out, ref_f32, ref_f64, tol(TOL, BF16_REL_BLOCK));
}

/// [`check`] for a whole network's output or embedding ([`BF16_REL_UNET`] in `bf16`).
pub fn check_net(label: &str, out: &Tensor, ref_f32: &Tensor, ref_f64: &Tensor) {
    check_tol(label, out, ref_f32, ref_f64, tol(TOL, BF16_REL_UNET));
}

fn check_tol(label: &str, out: &Tensor, ref_f32: &Tensor, ref_f64: &Tensor, tol: f64) {
    let (rel, max32) = diff(out, ref_f32);
    let max64 = diff(out, ref_f64).1;
    println!("PARITY {label} [{:?} {:?}]: rel_err_vs_f32 = {rel:.3e}, max_abs_vs_f32 = {max32:.3e}, max_abs_vs_f64 = {max64:.3e}", test_device().location(), test_dtype());
    assert!(rel <= tol, "{label}: relative error {rel:.3e} > {tol:e} ({:?})", test_dtype());
}

/// Asserts an `f64` run matches the float64 ground truth to `tol` (max abs).
pub fn check_f64(label: &str, out: &Tensor, ref_f64: &Tensor, tol: f64) {
    let (_, max) = diff(out, ref_f64);
    println!("PARITY {label} (f64 port vs _f64): max_abs = {max:.3e}");
    assert!(max <= tol, "{label}: f64 max abs {max:.3e} > {tol:e}");
}

/// (mean, mean|.|, unbiased std, max|.|) of `x`, the fixtures' trace statistics.
pub fn stats(x: &Tensor) -> [f64; 4] {
    let v = host_vec(x);
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let mean_abs = v.iter().map(|a| a.abs()).sum::<f64>() / n;
    let std = (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let max = v.iter().map(|a| a.abs()).fold(0.0, f64::max);
    [mean, mean_abs, std, max]
}

/// Compares traced stage outputs (name, tensor) with the fixture's `trace_modules` and `trace_stats`: each
/// statistic within `rel_tol` of the stage's mean |.| (f32), or in `bf16` within [`BF16_TRACE`] of the larger
/// of the stage's mean |.| and the statistic itself (the max |.| of `bf16` values is rounded to 8 bits).
pub fn check_trace(label: &str, expected_order: &[String], traced: &[(String, Tensor)], reference: &Tensor, rel_tol: f64) {
    let r: Vec<Vec<f64>> = reference.to_vec2().unwrap();
    let names: Vec<&String> = traced.iter().map(|(n, _)| n).collect();
    assert_eq!(names, expected_order.iter().collect::<Vec<_>>(), "{label}: traced module order");
    let mut worst = 0f64;
    for (i, (m, out)) in traced.iter().enumerate() {
        let s = stats(out);
        for j in 0..4 {
            let scale = if is_bf16() { r[i][1].abs().max(r[i][j].abs()) } else { r[i][1].abs().max(r[i][3].abs() * 1e-3) };
            let tol = tol(rel_tol, BF16_TRACE) * scale + 1e-6;
            worst = worst.max((s[j] - r[i][j]).abs() / scale);
            assert!((s[j] - r[i][j]).abs() <= tol, "{label}: trace {m} stat {j}: {} vs {}", s[j], r[i][j]);
        }
    }
    println!("PARITY {label} trace [{:?}]: worst stat error / scale = {worst:.3e}", test_dtype());
}

/// The fixture's `trace_modules` list.
pub fn trace_modules(cfg: &Value) -> Vec<String> {
    cfg["trace_modules"].as_array().expect("trace_modules").iter().map(|v| v.as_str().unwrap().to_string()).collect()
}
