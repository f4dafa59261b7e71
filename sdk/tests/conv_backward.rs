//! Forward and backward of `boot_sdk::ops`' convolutions against candle's own convolutions
//! differentiated in `f64` on the CPU (the ground truth). On the CPU this checks the dispatch and the
//! fallbacks; on CUDA with the `cudnn` feature (`BOOT_TEST_DEVICE=cuda:0`) it checks the cuDNN forward,
//! backward-data and backward-filter passes and the custom op's gradient wiring, in `f32` (FMA math, no
//! TF32: 1e-5 relative) and `bf16` (`BOOT_TEST_DTYPE=bf16`: 1.5e-2, one layer's rounding).

mod common;

use boot_sdk::candle::{Device, Result, Tensor, Var};
use boot_sdk::ops as functional;
use common::{diff, dev, host_f64, skip_without_conv, test_dtype, tol};

/// What is convolved: a dense or grouped convolution, or a transposed one.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Conv { groups: usize },
    Transpose { groups: usize },
}

struct Case {
    name: &'static str,
    x: (usize, usize, usize, usize),
    w: (usize, usize, usize, usize),
    padding: usize,
    stride: usize,
    kind: Kind,
}

/// The grouped weight as a dense block-diagonal one (candle's `conv_transpose2d` has no groups).
fn dense_transpose_weight(w: &Tensor, groups: usize) -> Result<Tensor> {
    let (cin, per_group, k, k2) = w.dims4()?;
    let cin_g = cin / groups;
    let mut rows = Vec::with_capacity(groups);
    for g in 0..groups {
        let block = w.narrow(0, g * cin_g, cin_g)?;
        let mut parts = Vec::with_capacity(groups);
        for h in 0..groups {
            parts.push(if h == g { block.clone() } else { Tensor::zeros((cin_g, per_group, k, k2), w.dtype(), w.device())? });
        }
        rows.push(Tensor::cat(&parts, 1)?);
    }
    Tensor::cat(&rows, 0)
}

/// `y = op(x, w)`, `loss = sum(y * r)`; returns (y, dx, dw).
fn run(case: &Case, x: &Tensor, w: &Tensor, r: &Tensor, reference: bool) -> Result<(Tensor, Tensor, Tensor)> {
    let (xv, wv) = (Var::from_tensor(x)?, Var::from_tensor(w)?);
    let (xt, wt) = (xv.as_tensor(), wv.as_tensor());
    let y = match (case.kind, reference) {
        (Kind::Conv { groups }, false) => functional::conv2d(xt, wt, case.padding, case.stride, groups)?,
        (Kind::Conv { groups }, true) => xt.conv2d(wt, case.padding, case.stride, 1, groups)?,
        (Kind::Transpose { groups }, false) => functional::conv_transpose2d(xt, wt, case.padding, case.stride, groups)?,
        (Kind::Transpose { groups }, true) => {
            xt.conv_transpose2d(&dense_transpose_weight(wt, groups)?, case.padding, 0, case.stride, 1)?
        }
    };
    let grads = (&y * r)?.sum_all()?.backward()?;
    let dx = grads.get(xt).cloned().expect("dx");
    let dw = grads.get(wt).cloned().expect("dw");
    Ok((y, dx, dw))
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "3x3 same", x: (2, 6, 9, 7), w: (5, 6, 3, 3), padding: 1, stride: 1, kind: Kind::Conv { groups: 1 } },
        Case { name: "3x3 stride 2", x: (2, 4, 8, 8), w: (6, 4, 3, 3), padding: 1, stride: 2, kind: Kind::Conv { groups: 1 } },
        Case { name: "1x1", x: (3, 8, 5, 5), w: (4, 8, 1, 1), padding: 0, stride: 1, kind: Kind::Conv { groups: 1 } },
        Case { name: "grouped", x: (2, 6, 6, 6), w: (4, 3, 3, 3), padding: 1, stride: 1, kind: Kind::Conv { groups: 2 } },
        Case { name: "depthwise FIR down", x: (2, 3, 8, 8), w: (3, 1, 4, 4), padding: 1, stride: 2, kind: Kind::Conv { groups: 3 } },
        Case { name: "transposed", x: (2, 5, 4, 3), w: (5, 2, 4, 4), padding: 1, stride: 2, kind: Kind::Transpose { groups: 1 } },
        Case { name: "depthwise FIR up", x: (2, 3, 4, 4), w: (3, 1, 4, 4), padding: 1, stride: 2, kind: Kind::Transpose { groups: 3 } },
    ]
}

#[test]
fn convolutions_and_their_gradients_match_candle_in_f64() -> Result<()> {
    if skip_without_conv("convolutions_and_their_gradients_match_candle_in_f64") {
        return Ok(());
    }
    let cpu = Device::Cpu;
    let on_cuda = common::test_device().is_cuda();
    let limit = tol(1e-5, 1.5e-2);
    let mut worst: f64 = 0.0;
    for case in cases() {
        // Grouped transposed convolutions exist only through cuDNN; the CPU path refuses them (checked below).
        if matches!(case.kind, Kind::Transpose { groups } if groups > 1) && !(on_cuda && cfg!(feature = "cudnn")) {
            let x = dev(&Tensor::randn(0f32, 1., case.x, &cpu)?);
            let w = dev(&Tensor::randn(0f32, 1., case.w, &cpu)?);
            let e = functional::conv_transpose2d(&x, &w, case.padding, case.stride, 3).unwrap_err().to_string();
            assert!(e.contains("cuDNN"), "{}: {e}", case.name);
            continue;
        }
        let x64 = Tensor::randn(0f64, 1., case.x, &cpu)?;
        let w64 = (Tensor::randn(0f64, 1., case.w, &cpu)? * 0.3)?;
        let (xd, wd) = (x64.dims().to_vec(), w64.dims().to_vec());
        let out = match case.kind {
            Kind::Conv { groups } => functional::ConvGeometry::of_conv(&xd, &wd, case.padding, case.stride, groups)?.output_dims(),
            Kind::Transpose { groups } => functional::ConvGeometry::of_transpose(&xd, &wd, case.padding, case.stride, groups)?.input_dims(),
        };
        let r64 = Tensor::randn(0f64, 1., out.to_vec(), &cpu)?;
        // Rounded to the test dtype first, so both sides see the same inputs.
        let (x, w, r) = (dev(&x64), dev(&w64), dev(&r64));
        let (y_ref, dx_ref, dw_ref) = run(&case, &host_f64(&x), &host_f64(&w), &host_f64(&r), true)?;
        let (y, dx, dw) = run(&case, &x, &w, &r, false)?;
        for (what, got, want) in [("y", &y, &y_ref), ("dx", &dx, &dx_ref), ("dw", &dw, &dw_ref)] {
            assert_eq!(got.dims(), want.dims(), "{}: {what} shape", case.name);
            let e = diff(got, want).0;
            eprintln!("{:>20} {what:>2}: relative L2 error {e:.2e} ({:?}, {:?})", case.name, got.device().location(), test_dtype());
            assert!(e <= limit, "{}: {what} off by {e:.3e} > {limit:e}", case.name);
            worst = worst.max(e);
        }
    }
    eprintln!("worst relative error {worst:.2e} (limit {limit:e})");
    Ok(())
}
