//! `boot_sdk::ops::add_channel_bias` (forward, and the gradients of x and of an f32 master bias)
//! against candle's `broadcast_add` + autodiff in f64 on the CPU. Runs on CUDA with BOOT_TEST_DEVICE=cuda:0
//! (and BOOT_TEST_DTYPE=bf16: the output rounds once, the bias gradient is one f32 sum rounded to bf16).

mod common;

use boot_sdk::candle::{DType, Device, Result, Tensor, Var};
use boot_sdk::ops::add_channel_bias;
use common::{diff, dev, host_f64, test_dtype, tol};

#[test]
fn channel_bias_matches_broadcast_add() -> Result<()> {
    let cpu = Device::Cpu;
    let limit = tol(1e-6, 8e-3);
    for dims in [vec![2, 3, 4, 5], vec![3, 6], vec![1, 4, 7], vec![4, 8, 16, 16]] {
        let c = dims[1];
        let x64 = Tensor::randn(0f64, 1., dims.clone(), &cpu)?;
        let b64 = Tensor::randn(0f64, 1., c, &cpu)?;
        let r64 = Tensor::randn(0f64, 1., dims.clone(), &cpu)?;
        let (x, r) = (dev(&x64), dev(&r64));
        // The bias is an f32 master weight, cast to the activation dtype inside the op.
        let b = Var::from_tensor(&b64.to_dtype(DType::F32)?.to_device(&common::test_device())?)?;
        let xv = Var::from_tensor(&x)?;
        let y = add_channel_bias(xv.as_tensor(), b.as_tensor())?;
        let grads = (&y * &r)?.sum_all()?.backward()?;
        let (dx, db) = (grads.get(xv.as_tensor()).expect("dx"), grads.get(b.as_tensor()).expect("db"));
        assert_eq!(db.dtype(), DType::F32);
        // Reference: candle's broadcast add in f64 on the same (rounded) inputs.
        let (xr, br, rr) = (Var::from_tensor(&host_f64(&x))?, Var::from_tensor(&host_f64(b.as_tensor()))?, host_f64(&r));
        let mut shape = vec![1; dims.len()];
        shape[1] = c;
        let yr = xr.as_tensor().broadcast_add(&br.as_tensor().reshape(shape)?)?;
        let gr = (&yr * &rr)?.sum_all()?.backward()?;
        for (what, got, want) in [("y", &y, &yr), ("dx", dx, gr.get(xr.as_tensor()).expect("dx")), ("db", db, gr.get(br.as_tensor()).expect("db"))] {
            let e = diff(got, want).0;
            assert!(e <= limit, "{dims:?} {what}: {e:.2e} > {limit:e} ({:?})", test_dtype());
        }
    }
    Ok(())
}

#[test]
fn bias_of_the_wrong_length_is_an_error() -> Result<()> {
    let x = Tensor::zeros((2, 3, 4), DType::F32, &Device::Cpu)?;
    let e = add_channel_bias(&x, &Tensor::zeros(4, DType::F32, &Device::Cpu)?).unwrap_err().to_string();
    assert!(e.contains("must be [3]"), "{e}");
    Ok(())
}
