//! `boot_sdk::ops::fused_update` against the tensor-op formulas it replaced (AdamW and EMA): equal bit for bit
//! on the CPU, where both round every operation the same way; on CUDA (`BOOT_TEST_DEVICE=cuda:0`) within
//! 1e-6 relative (the kernels compute the same expressions with their own division and square root).

#[path = "common/device.rs"]
mod common;

use boot_sdk::candle::{DType, Result, Tensor};
use boot_sdk::ops::fused_update::{adamw_step, ema_step, AdamWStep};
use common::{host_vec, test_device};

fn randn(shape: (usize, usize), scale: f64) -> Result<Tensor> {
    (Tensor::randn(0f32, 1., shape, &test_device())? * scale)?.to_dtype(DType::F32)
}

fn close(got: &Tensor, want: &Tensor, what: &str) {
    let (g, w) = (host_vec(got), host_vec(want));
    let exact = test_device().is_cpu();
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = if exact { a == b } else { (a - b).abs() <= 1e-6 * b.abs().max(1e-3) };
        assert!(ok, "{what}[{i}]: {a} vs {b}");
    }
}

#[test]
fn adamw_step_matches_the_tensor_op_formula() -> Result<()> {
    for (t, scale, wd) in [(1u64, 1.0, 0.0), (7, 0.5, 0.01)] {
        let (p, g, m, v) = (randn((5, 33), 1.0)?, randn((5, 33), 0.1)?, randn((5, 33), 0.01)?, randn((5, 33), 0.001)?.abs()?);
        let s = AdamWStep { beta1: 0.9, beta2: 0.999, lr: 1e-3, eps: 1e-8, decay: 1.0 - 1e-3 * wd, bias1: 1.0 - 0.9f64.powi(t as i32), bias2: 1.0 - 0.999f64.powi(t as i32), grad_scale: scale };
        // The formula core's AdamW used before the fused op.
        let gs = if scale != 1.0 { (&g * scale)? } else { g.clone() };
        let m_ref = ((&m * s.beta1)? + (&gs * (1.0 - s.beta1))?)?;
        let v_ref = ((&v * s.beta2)? + (gs.sqr()? * (1.0 - s.beta2))?)?;
        let update = ((&m_ref / s.bias1)? / ((&v_ref / s.bias2)?.sqrt()? + s.eps)?)?;
        let p_ref = ((&p * s.decay)? - (update * s.lr)?)?;
        let (p2, m2, v2) = (p.copy()?, m.copy()?, v.copy()?);
        adamw_step(&p2, &g, &m2, &v2, &s)?;
        close(&m2, &m_ref, "m");
        close(&v2, &v_ref, "v");
        close(&p2, &p_ref, "param");
    }
    Ok(())
}

#[test]
fn ema_step_matches_the_tensor_op_formula() -> Result<()> {
    let (shadow, live) = (randn((3, 17), 1.0)?, randn((3, 17), 1.0)?);
    let want = ((&shadow * 0.999)? + (&live * (1.0 - 0.999))?)?;
    let got = shadow.copy()?;
    ema_step(&got, &live, 0.999)?;
    close(&got, &want, "ema");
    Ok(())
}
