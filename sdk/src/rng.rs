//! Per-sample randomness: every random draw is a pure function of (run seed, stream, step, sample index),
//! so samples do not change with batch size and a resumed run draws exactly what a straight run draws.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::candle::{Device, Tensor};

/// Independent random streams of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Stream {
    /// Initial noise `eps`.
    Noise = 1,
    /// Target times `t`.
    Time = 2,
    /// Conditioning (class labels, prompts).
    Cond = 3,
    /// Guidance weights `w`.
    Guidance = 4,
    /// Parameter initialisation.
    Init = 5,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of one sample: a hash of the run seed, the stream, the training step and the sample index.
pub fn sample_seed(run_seed: u64, stream: Stream, step: u64, index: u64) -> u64 {
    let mut h = splitmix64(run_seed);
    h = splitmix64(h ^ stream as u64);
    h = splitmix64(h ^ step);
    splitmix64(h ^ index)
}

/// Seeds of samples `first..first + n`.
pub fn sample_seeds(run_seed: u64, stream: Stream, step: u64, first: u64, n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| sample_seed(run_seed, stream, step, first + i)).collect()
}

/// A generator for one sample's seed.
pub fn rng_for(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Standard normal noise `[B, ..shape]`, row `i` drawn from `seeds[i]` alone.
pub fn normal(seeds: &[u64], shape: &[usize], device: &Device) -> crate::Result<Tensor> {
    let per: usize = shape.iter().product();
    let mut v = Vec::with_capacity(per * seeds.len());
    for &s in seeds {
        let mut r = rng_for(s);
        v.extend((0..per).map(|_| r.sample::<f32, _>(StandardNormal)));
    }
    let mut full = vec![seeds.len()];
    full.extend_from_slice(shape);
    Ok(Tensor::from_vec(v, full, device)?)
}

/// One uniform draw in `[lo, hi)` per seed.
pub fn uniform(seeds: &[u64], lo: f64, hi: f64) -> Vec<f64> {
    seeds.iter().map(|&s| lo + (hi - lo) * rng_for(s).random::<f64>()).collect()
}
