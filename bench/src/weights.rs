//! A random-weight checkpoint of a benchmarked network, written like a user's: `teacher.safetensors` with
//! the original state-dict keys (and `teacher.json` for EDM, as `scripts/convert_edm_pkl.py` writes it).
//! Values follow the EDM parity fixtures' scheme (no zeros anywhere, outputs of order 1), each tensor drawn
//! from a generator seeded by the run seed and its name.

use std::collections::HashMap;
use std::path::Path;

use boot_sdk::candle::{Device, Tensor};
use boot_sdk::rand::Rng;
use boot_sdk::rand_distr::StandardNormal;
use boot_sdk::rng::{rng_for, sample_seed, Stream};

use crate::arch::{Arch, Init, Param};

fn name_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across runs and platforms (std's hasher is not promised to be).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    sample_seed(seed, Stream::Init, 0, h)
}

/// The values of one tensor.
pub fn draw(p: &Param, seed: u64) -> Vec<f32> {
    let n = p.numel();
    let mut rng = rng_for(name_seed(seed, &p.name));
    let mut normal = |scale: f64, shift: f64| -> Vec<f32> { (0..n).map(|_| (shift + scale * rng.sample::<f64, _>(StandardNormal)) as f32).collect() };
    match &p.init {
        Init::Weight { fan_in } => normal(1.0 / (*fan_in as f64).sqrt(), 0.0),
        Init::Bias => normal(0.05, 0.0),
        Init::NormWeight => normal(0.1, 1.0),
        Init::NormBias => normal(0.1, 0.0),
        Init::Table => normal(1.0, 0.0),
        Init::Filter(taps) => {
            let f: Vec<f32> = taps.iter().map(|&v| v as f32).collect();
            let s: f32 = f.iter().sum();
            f.iter().flat_map(|a| f.iter().map(move |b| a * b / (s * s))).collect()
        }
    }
}

/// Writes the checkpoint of `arch` into `dir` (`teacher.safetensors`, and `teacher.json` for EDM); returns
/// the number of values written.
pub fn write_checkpoint(arch: &Arch, dir: &Path, seed: u64) -> boot_sdk::Result<usize> {
    let net = arch.net();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(16);
    // Largest tensors first, dealt round-robin, so the threads finish together.
    let mut order: Vec<&Param> = net.params.iter().collect();
    order.sort_by_key(|p| std::cmp::Reverse(p.numel()));
    let chunks: Vec<Vec<&Param>> = (0..threads).map(|i| order.iter().skip(i).step_by(threads).copied().collect()).collect();
    let drawn: Vec<(String, Vec<usize>, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| s.spawn(move || chunk.iter().map(|p| (p.name.clone(), p.shape.clone(), draw(p, seed))).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("weight thread")).collect()
    });
    let mut tensors = HashMap::with_capacity(drawn.len());
    for (name, shape, values) in drawn {
        tensors.insert(name, Tensor::from_vec(values, shape, &Device::Cpu)?);
    }
    let meta = HashMap::from([("boot-bench".to_string(), "random weights".to_string())]);
    boot_sdk::io::save_safetensors(&dir.join("teacher.safetensors"), &tensors, Some(meta))?;
    if let Arch::Song(s) = arch {
        std::fs::write(dir.join("teacher.json"), serde_json::to_string_pretty(&s.network_json())?)?;
    }
    Ok(net.numel())
}
