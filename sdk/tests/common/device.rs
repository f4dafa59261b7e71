//! Device and dtype of the parity tests, chosen when the test executable runs, so that a CUDA build of the
//! tests checks the GPU without cargo (`scripts/cuda/README.md`):
//!
//! - `BOOT_TEST_DEVICE`: `cpu` (the default) or `cuda:N` (`cuda` is `cuda:0`); a build without CUDA, or a
//!   machine without that GPU, stops every test that asks with a message saying so.
//! - `BOOT_TEST_DTYPE`: `f32` (the default) or `bf16`.
//!
//! Weights, images and the networks' bodies go to [`test_device`] in [`test_dtype`]; the conditioning inputs
//! (timesteps, EDM noise labels, class labels, the embedding vectors of ADM and EDM blocks) go there in
//! [`cond_dtype`], which is `f32` for `bf16`, as the networks compute their embeddings
//! (`boot_models::embedding_dtype`; diffusers' blocks take `temb` in the model's dtype). Outputs are
//! compared on the CPU in `f64`. The float64 ground-truth runs and the tests of a layer against its
//! definition in `f64` stay on the CPU in `f64` whatever these say: their point is that the port is the same
//! algorithm, which one exact run shows.
//!
//! Tolerances ([`tol`]): in `f32` exactly those the CPU tests always had (`||out - ref|| / ||ref|| <= 1e-4`
//! against the official float32 output), on the CPU and on CUDA. `bf16` keeps 8 significant bits (7
//! stored), so one rounding is off by up to `2^-9 = 2.0e-3` relative; the weights, the input and every
//! layer's output are rounded (products accumulate in f32), so a block is off by a few `1e-3` and a UNet of
//! 10 to 30 layers by `1e-2` to `2e-2`. The `bf16` tolerances below are the errors measured on an H200
//! with a margin of 2 or more; `sdk/tests/README.md` lists them per fixture.
//!
//! candle 0.11.1 has no `bf16` convolution on the CPU: there the `bf16` runs of convolutional networks skip
//! with a message ([`skip_without_conv`]) and only the attention blocks and embeddings are checked.
//!
//! The same file is in `sdk/tests/common/`, `plugins/edm/tests/common/` and `plugins/imagenet/tests/common/`:
//! keep the three copies identical.

#![allow(dead_code)]

use std::sync::OnceLock;

use boot_sdk::candle::{DType, Device, Tensor};

/// `bf16`: relative L2 error of one block or layer (resnet, attention, transformer, resampler) against the
/// official float32 output. Measured on an H200 (CUDA 13.0): 3.4e-3 .. 6.8e-3 (`unetblock_adm_attn2h`).
pub const BF16_REL_BLOCK: f64 = 1.5e-2;
/// `bf16`: relative L2 error of a whole network, wrapper or teacher (UNet, EDM `D`, ADM x0) and of the
/// embeddings (computed in f32 from bf16-stored weights) against the official float32 output. Measured on
/// an H200: networks 1.3e-2 .. 1.9e-2 (`vpprecond_songunet_ddpmpp` F), EDM `D` and teachers 6.9e-3 ..
/// 1.1e-2, embeddings 1.1e-3 .. 4.9e-3 (not the Fourier embeddings: see `sdk/tests/README.md`).
pub const BF16_REL_UNET: f64 = 4e-2;
/// `bf16`: the per-stage trace statistics (mean, mean |.|, std, max |.|), relative to the larger of the
/// stage's mean |.| and the statistic itself. Measured on an H200: up to 1.2e-2 (`songunet_ddpmpp`).
pub const BF16_TRACE: f64 = 3e-2;

/// The device of `BOOT_TEST_DEVICE` (`cpu` unless set), the same one for every test of the executable
/// (candle refuses to mix tensors of two `Device::new_cuda` calls).
pub fn test_device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE.get_or_init(|| parse_device(std::env::var("BOOT_TEST_DEVICE").ok().as_deref().unwrap_or("cpu"))).clone()
}

fn parse_device(spec: &str) -> Device {
    let ordinal = match spec.trim() {
        "cpu" | "" => return Device::Cpu,
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => panic!("BOOT_TEST_DEVICE=`{spec}`: expected `cpu` or `cuda:N`"),
        },
    };
    match Device::new_cuda(ordinal) {
        Ok(d) => d,
        Err(e) => {
            let e = match e {
                boot_sdk::candle::Error::WithBacktrace { inner, .. } => *inner,
                e => e,
            };
            let hint = match e {
                boot_sdk::candle::Error::NotCompiledWithCudaSupport => ": this test executable runs on the CPU only (scripts/cuda/build.sh makes the CUDA build)",
                _ => "",
            };
            panic!("BOOT_TEST_DEVICE=`{spec}`: no usable CUDA device ({e}){hint}")
        }
    }
}

/// The dtype of `BOOT_TEST_DTYPE` (`f32` unless set): `f32` or `bf16`.
pub fn test_dtype() -> DType {
    match std::env::var("BOOT_TEST_DTYPE").ok().as_deref().map(str::trim) {
        None | Some("") | Some("f32") => DType::F32,
        Some("bf16") => DType::BF16,
        Some(other) => panic!("BOOT_TEST_DTYPE=`{other}`: expected `f32` or `bf16`"),
    }
}

/// The dtype of the conditioning inputs for a body in [`test_dtype`]: `f32` for both, as
/// `boot_models::embedding_dtype` gives (not called here: the sdk's tests do not link the model library).
pub fn cond_dtype() -> DType {
    DType::F32
}

/// Whether the run is in `bf16`.
pub fn is_bf16() -> bool {
    test_dtype() == DType::BF16
}

/// The tolerance for the run's dtype: `f32` as given (the CPU tests' own), `bf16` the looser one.
pub fn tol(f32: f64, bf16: f64) -> f64 {
    match test_dtype() {
        DType::BF16 => bf16,
        _ => f32,
    }
}

/// Prints why a test does not run in `bf16` and returns true there (`if skip_in_bf16(..) { return; }`).
pub fn skip_in_bf16(test: &str, why: &str) -> bool {
    if is_bf16() {
        eprintln!("SKIPPED in bf16: {test}: {why}");
    }
    is_bf16()
}

/// Why the test device cannot run a convolution in the test dtype, or `None` when it can (always in `f32`).
/// candle 0.11.1's CPU `conv2d` has no `bf16` kernel (its im2col path calls the `f16`/`f32`/`f64`-only gemm
/// directly: "unsupported dtype BF16 for op matmul"), so on the CPU the `bf16` runs of the convolutional
/// networks skip; on CUDA they run. Probed once with a 3x3 convolution, so a candle that gains the kernel
/// runs them.
pub fn conv_unsupported() -> Option<String> {
    static PROBE: OnceLock<Option<String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let (dtype, device) = (test_dtype(), test_device());
            let probe = || -> boot_sdk::candle::Result<Tensor> {
                let x = Tensor::ones((1, 2, 5, 5), dtype, &device)?;
                x.conv2d(&Tensor::ones((2, 2, 3, 3), dtype, &device)?, 1, 1, 1, 1)
            };
            probe().err().map(|e| match e {
                boot_sdk::candle::Error::WithBacktrace { inner, .. } => inner.to_string(),
                e => e.to_string(),
            })
        })
        .clone()
}

/// Prints why and returns true when `test` cannot run here because of [`conv_unsupported`]
/// (`if skip_without_conv(..) { return; }`).
pub fn skip_without_conv(test: &str) -> bool {
    match conv_unsupported() {
        Some(why) => {
            eprintln!("SKIPPED on {:?} in {:?}: {test}: no convolution in this dtype here ({why})", test_device().location(), test_dtype());
            true
        }
        None => false,
    }
}

/// `x` on the test device in `dtype` (float tensors only; integer tensors keep their dtype).
pub fn on_device(x: &Tensor, dtype: DType) -> Tensor {
    let x = x.to_device(&test_device()).expect("to the test device");
    if x.dtype().is_float() {
        x.to_dtype(dtype).expect("to the test dtype")
    } else {
        x
    }
}

/// An image-like input (or a weight) on the test device in the test dtype.
pub fn dev(x: &Tensor) -> Tensor {
    on_device(x, test_dtype())
}

/// A conditioning input (timesteps, noise labels, class labels, embeddings) on the test device in [`cond_dtype`].
pub fn dev_cond(x: &Tensor) -> Tensor {
    on_device(x, cond_dtype())
}

/// `x` on the CPU in `f64`, for comparisons.
pub fn host_f64(x: &Tensor) -> Tensor {
    x.to_device(&Device::Cpu).expect("to the CPU").to_dtype(DType::F64).expect("to f64")
}

/// Values of `x` (any device, any float dtype) as `f64`.
pub fn host_vec(x: &Tensor) -> Vec<f64> {
    host_f64(x).flatten_all().expect("flatten").to_vec1().expect("values")
}
