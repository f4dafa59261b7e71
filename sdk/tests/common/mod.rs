//! Helpers shared by the kernel tests here and, through `#[path]`, by the model library's tests
//! (`models/tests/common/mod.rs`): the run-time test device and dtype (`device.rs`), inputs with awkward
//! layouts (`inputs.rs`) and the comparison of two tensors.

#![allow(dead_code)]

#[path = "device.rs"]
mod device;
#[path = "inputs.rs"]
pub mod inputs;

use boot_sdk::candle::Tensor;
pub use device::*;

fn f64v(x: &Tensor) -> Vec<f64> {
    host_vec(x)
}

/// `(relative L2 error, max abs difference)`.
pub fn diff(out: &Tensor, reference: &Tensor) -> (f64, f64) {
    assert_eq!(out.dims(), reference.dims(), "shape mismatch");
    let (a, b) = (f64v(out), f64v(reference));
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    (num / den, max)
}
