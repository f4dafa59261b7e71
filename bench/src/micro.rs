//! `boot-bench --micro`: the building blocks of the benchmarked UNets timed one at a time (forward, and
//! forward + backward seeded with ones, no reduction) at the activation shapes of the two configurations, in the run's dtype.
//! `bench/torch/micro.py` times the same operations in PyTorch eager, so the two tables say which operation
//! costs boot more than PyTorch.

use std::time::Instant;

use boot_sdk::candle::{DType, Device, Tensor, Var};
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_models::GroupNorm;
use boot_sdk::ops as functional;
use serde_json::{json, Value};

/// Activation shapes `[B, C, H, W]`: CIFAR-10 DDPM++ at 32x32 (batch 128) and ImageNet-64 ADM at 64x64
/// (batch 64 with CFG = 128 teacher rows).
const SHAPES: [(&str, [usize; 4]); 2] = [("cifar10 32x32", [128, 128, 32, 32]), ("imagenet64 64x64", [128, 192, 64, 64])];

/// Median seconds of `iters` timed calls of `f` after `warmup` untimed ones (device synchronised around each).
fn time(device: &Device, warmup: usize, iters: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut v = Vec::with_capacity(iters);
    for _ in 0..iters {
        device.synchronize()?;
        let t = Instant::now();
        f()?;
        device.synchronize()?;
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

/// Runs the micro-benchmarks and returns one JSON row per (shape, operation).
pub fn run(device: &Device, dtype: DType, iters: usize) -> anyhow::Result<Vec<Value>> {
    let mut rows = Vec::new();
    for (shape_name, dims) in SHAPES {
        let [b, c, _, _] = dims;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., dims.to_vec(), device)?.to_dtype(dtype)?)?;
        let x2 = Tensor::randn(0f32, 1., dims.to_vec(), device)?.to_dtype(dtype)?;
        let emb = Tensor::randn(0f32, 1., (b, c, 1, 1), device)?.to_dtype(dtype)?;
        let w = Var::from_tensor(&(Tensor::randn(0f32, 1., (c, c, 3, 3), device)? * (1.0 / (9.0 * c as f64).sqrt()))?)?;
        let bias = Var::from_tensor(&Tensor::zeros(c, DType::F32, device)?)?;
        let varmap = VarMap::new();
        let norm = GroupNorm::new(VarBuilder::from_varmap(&varmap, DType::F32, device), c, 32, 1e-5)?;
        type Op<'a> = Box<dyn Fn(&Tensor) -> boot_sdk::candle::Result<Tensor> + 'a>;
        let ops: Vec<(&str, Op)> = vec![
            ("conv3x3", Box::new(|x: &Tensor| functional::conv2d(x, &w.as_tensor().to_dtype(dtype)?, 1, 1, 1))),
            ("conv3x3+bias", Box::new(|x: &Tensor| functional::add_channel_bias(&functional::conv2d(x, &w.as_tensor().to_dtype(dtype)?, 1, 1, 1)?, bias.as_tensor()))),
            ("group_norm", Box::new(|x: &Tensor| norm.forward(x))),
            ("silu", Box::new(|x: &Tensor| boot_sdk::ops::silu(x))),
            ("group_norm+silu", Box::new(|x: &Tensor| boot_sdk::ops::silu(&norm.forward(x)?))),
            ("add", Box::new(|x: &Tensor| x + &x2)),
            ("broadcast_add", Box::new(|x: &Tensor| x.broadcast_add(&emb))),
            ("upsample2x", Box::new(|x: &Tensor| functional::upsample_nearest2x(x))),
        ];
        for (name, op) in &ops {
            let detached = x.as_tensor().detach();
            let fwd = time(device, 3, iters, || {
                op(&detached)?;
                Ok(())
            })?;
            let fwd_bwd = time(device, 3, iters, || {
                op(x.as_tensor())?.backward()?;
                Ok(())
            })?;
            eprintln!("boot-bench micro: {shape_name:>17} {name:>16}: forward {:8.3} ms, forward+backward {:8.3} ms", 1e3 * fwd, 1e3 * fwd_bwd);
            rows.push(json!({ "shape": shape_name, "dims": dims, "op": name, "forward_ms": 1e3 * fwd, "forward_backward_ms": 1e3 * fwd_bwd }));
        }
    }
    Ok(rows)
}
