//! A Gaussian teacher with a closed-form denoiser and a closed-form probability-flow ODE, for exact tests.
#![allow(dead_code)]

use std::any::Any;

use boot_sdk::candle::{Device, Tensor};
use boot_sdk::{Cond, NoiseSchedule, Teacher, Times};

/// Data `x0 ~ N(m, s^2 I)` with `m` a fixed image.
#[derive(Debug)]
pub struct GaussianTeacher {
    pub mean: Tensor,
    pub std: f64,
}

impl GaussianTeacher {
    pub fn new(shape: [usize; 3], std: f64) -> Self {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin() * 0.8).collect();
        Self { mean: Tensor::from_vec(v, shape.to_vec(), &Device::Cpu).unwrap(), std }
    }

    /// The exact ODE map of `x_t` at `t` to time `s` (both per sample): `z = (x - alpha m) / r` is constant,
    /// with `r = sqrt(alpha^2 s^2 + sigma^2)`.
    pub fn ode_map(&self, x_t: &Tensor, t: &Times, s: &Times) -> Tensor {
        let mut rows = Vec::new();
        for i in 0..t.len() {
            let r = |a: f64, sg: f64| (a * a * self.std * self.std + sg * sg).sqrt();
            let (rt, rs) = (r(t.alpha[i], t.sigma[i]), r(s.alpha[i], s.sigma[i]));
            let x = x_t.get(i).unwrap();
            let z = ((x - (&self.mean * t.alpha[i]).unwrap()).unwrap() / rt).unwrap();
            rows.push(((&self.mean * s.alpha[i]).unwrap() + (z * rs).unwrap()).unwrap());
        }
        Tensor::stack(&rows, 0).unwrap()
    }
}

impl Teacher for GaussianTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        let d = self.mean.dims();
        [d[0], d[1], d[2]]
    }
    fn denoise(&self, x_t: &Tensor, times: &Times, _cond: &Cond) -> boot_sdk::Result<Tensor> {
        let mut rows = Vec::new();
        for i in 0..times.len() {
            let (a, sg) = (times.alpha[i], times.sigma[i]);
            let gain = a * self.std * self.std / (a * a * self.std * self.std + sg * sg);
            let x = x_t.get(i)?;
            rows.push((&self.mean + ((x - (&self.mean * a)?)? * gain)?)?);
        }
        Ok(Tensor::stack(&rows, 0)?)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Max absolute difference.
pub fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap() as f64
}

/// Root mean square of the difference.
pub fn rms(a: &Tensor, b: &Tensor) -> f64 {
    ((a - b).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap() as f64).sqrt()
}

/// Standard normal noise.
pub fn noise(n: usize, shape: [usize; 3], seed: u64) -> Tensor {
    let seeds = boot_sdk::rng::sample_seeds(seed, boot_sdk::rng::Stream::Noise, 0, 0, n);
    boot_sdk::rng::normal(&seeds, &shape, &Device::Cpu).unwrap()
}

pub fn times(schedule: &dyn NoiseSchedule, t: &[f64]) -> Times {
    Times::new(schedule, t.to_vec())
}
