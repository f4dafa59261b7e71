//! `boot_sdk::ops::softmax_last_dim` (forward and gradient) against candle's `ops::softmax` +
//! autodiff in f64 on the CPU, on the same (rounded) inputs. Runs on CUDA with BOOT_TEST_DEVICE=cuda:0 (and
//! BOOT_TEST_DTYPE=bf16: the output and the gradient each round once).

mod common;

use boot_sdk::candle::{DType, Device, Result, Tensor, Var, D};
use boot_sdk::ops::softmax_last_dim;
use common::{diff, dev, host_f64, test_dtype, tol};

#[test]
fn softmax_matches_candle_in_f64() -> Result<()> {
    let cpu = Device::Cpu;
    let limit = tol(1e-6, 1.5e-2);
    // Row lengths below, at and above a warp; logits up to +-40 (exp would overflow without the max shift).
    for (dims, spread) in [(vec![3, 5], 1.0), (vec![2, 4, 32], 3.0), (vec![4, 7, 257], 40.0), (vec![1, 1000], 10.0)] {
        let x64 = (Tensor::randn(0f64, 1., dims.clone(), &cpu)? * spread)?;
        let r64 = Tensor::randn(0f64, 1., dims.clone(), &cpu)?;
        let (x, r) = (dev(&x64), dev(&r64));
        let xv = Var::from_tensor(&x)?;
        let y = softmax_last_dim(xv.as_tensor())?;
        assert_eq!(y.dtype(), x.dtype());
        let grads = (&y * &r)?.sum_all()?.backward()?;
        let dx = grads.get(xv.as_tensor()).expect("dx");
        let xr = Var::from_tensor(&host_f64(&x))?;
        let yr = boot_sdk::candle_nn::ops::softmax(xr.as_tensor(), D::Minus1)?;
        let gr = (&yr * &host_f64(&r))?.sum_all()?.backward()?;
        for (what, got, want) in [("y", &y, &yr), ("dx", dx, gr.get(xr.as_tensor()).expect("dx"))] {
            let e = diff(got, want).0;
            assert!(e <= limit, "{dims:?} {what}: {e:.2e} > {limit:e} ({:?})", test_dtype());
        }
        let sums = host_f64(&y).sum(D::Minus1)?.flatten_all()?.to_vec1::<f64>()?;
        assert!(sums.iter().all(|s| (s - 1.0).abs() < tol(1e-5, 2e-2)), "rows sum to {sums:?}");
    }
    Ok(())
}

#[test]
fn a_non_contiguous_input_is_made_contiguous() -> Result<()> {
    let x = Tensor::randn(0f32, 1., (4, 6), &Device::Cpu)?.to_dtype(DType::F32)?;
    let t = x.t()?;
    let got = softmax_last_dim(&t)?;
    let want = boot_sdk::candle_nn::ops::softmax(&t, D::Minus1)?;
    assert!(diff(&got, &want).0 < 1e-6);
    Ok(())
}
