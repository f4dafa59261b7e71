//! Samplers: the teacher's DDIM-N and signal-ODE-N (which are the same map, written in `x` and in signal
//! space), and the one-step student.

use std::fmt;
use std::str::FromStr;

use boot_sdk::candle::Tensor;
use boot_sdk::solver::{signal_step, signal_step_sizes};
use boot_sdk::{Cond, Guidance, NoiseSchedule, Student, Teacher, Times};

/// Which sampler produces a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerKind {
    /// The teacher with `n` DDIM steps.
    TeacherDdim(usize),
    /// The teacher's signal ODE with `n` Euler steps (equal to DDIM-n).
    TeacherSignalOde(usize),
    /// The one-step student.
    Student,
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplerKind::TeacherDdim(n) => write!(f, "teacher_ddim_{n}"),
            SamplerKind::TeacherSignalOde(n) => write!(f, "teacher_signal_ode_{n}"),
            SamplerKind::Student => write!(f, "student_1"),
        }
    }
}

impl FromStr for SamplerKind {
    type Err = String;
    /// Parses `student`, `ddim-N` or `signal-ode-N` (also the `Display` names).
    fn from_str(s: &str) -> Result<Self, String> {
        let steps = |rest: &str| rest.parse::<usize>().ok().filter(|n| *n > 0);
        if s == "student" || s == "student_1" {
            return Ok(SamplerKind::Student);
        }
        for (prefix, make) in [
            ("ddim-", SamplerKind::TeacherDdim as fn(usize) -> SamplerKind),
            ("teacher_ddim_", SamplerKind::TeacherDdim),
            ("signal-ode-", SamplerKind::TeacherSignalOde),
            ("teacher_signal_ode_", SamplerKind::TeacherSignalOde),
        ] {
            if let Some(n) = s.strip_prefix(prefix).and_then(steps) {
                return Ok(make(n));
            }
        }
        Err(format!("unknown sampler `{s}` (expected `student`, `ddim-N` or `signal-ode-N` with N >= 1)"))
    }
}

/// Evaluation times of an `n`-step teacher sampler: `t_max`, then evenly spaced towards `t_min`; the last
/// step goes from the last of these to clean data (`alpha = 1`, `sigma = 0`).
pub fn sampler_times(t_max: f64, t_min: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| t_max - i as f64 * (t_max - t_min) / n as f64).collect()
}

/// Everything a teacher sampler needs besides the noise.
pub struct TeacherSampling<'a> {
    /// The teacher.
    pub teacher: &'a dyn Teacher,
    /// Guidance applied to every teacher call.
    pub guidance: &'a dyn Guidance,
    /// The run's schedule.
    pub schedule: &'a dyn NoiseSchedule,
    /// Conditioning of the batch.
    pub cond: &'a Cond,
    /// Per-sample guidance weights.
    pub w: Option<&'a [f64]>,
    /// Start time (the noise is `x_{t_max}`).
    pub t_max: f64,
    /// End of the evenly spaced grid.
    pub t_min: f64,
}

impl TeacherSampling<'_> {
    fn denoise(&self, x: &Tensor, times: &Times) -> boot_sdk::Result<Tensor> {
        self.guidance.denoise(self.teacher, x, times, self.cond, self.w)
    }

    /// DDIM with `n` steps (Eq. 1) from `x_{t_max} = eps`; returns the clean sample.
    pub fn ddim(&self, eps: &Tensor, n: usize) -> boot_sdk::Result<Tensor> {
        self.ddim_on(eps, &sampler_times(self.t_max, self.t_min, n))
    }

    /// DDIM from `x = eps` at `grid[0]` through the decreasing times `grid`, returning the clean prediction
    /// at the last of them. With a discrete teacher's integer timesteps `tau` as `grid = tau / (N - 1)` on its
    /// native schedule this is diffusers' `DDIMScheduler` (eta 0, `set_alpha_to_one`) on those timesteps
    /// (`plugins/diffusers/tests/diffusers_teacher.rs`).
    pub fn ddim_on(&self, eps: &Tensor, grid: &[f64]) -> boot_sdk::Result<Tensor> {
        let b = eps.dim(0)?;
        let mut x = eps.clone();
        for (i, &t) in grid.iter().enumerate() {
            let now = Times::constant(self.schedule, t, b);
            let f = self.denoise(&x, &now)?;
            x = match grid.get(i + 1) {
                None => f,
                Some(&s) => {
                    let (a_t, s_t) = (now.alpha[0], now.sigma[0]);
                    let (a_s, s_s) = (self.schedule.alpha(s), self.schedule.sigma(s));
                    ((x * (s_s / s_t))? + (f * (a_s - a_t * s_s / s_t))?)?
                }
            };
        }
        Ok(x)
    }

    /// The signal ODE (Eq. 4) with `n` steps from `y_{t_max} = (eps - sigma eps) / alpha`, i.e. the same
    /// starting point `x_{t_max} = eps` as [`TeacherSampling::ddim`]; returns `y` at clean data.
    pub fn signal_ode(&self, eps: &Tensor, n: usize) -> boot_sdk::Result<Tensor> {
        let b = eps.dim(0)?;
        let grid = sampler_times(self.t_max, self.t_min, n);
        let start = Times::constant(self.schedule, grid[0], b);
        let mut y = (eps * ((1.0 - start.sigma[0]) / start.alpha[0]))?;
        for (i, &t) in grid.iter().enumerate() {
            let now = Times::constant(self.schedule, t, b);
            let f = self.denoise(&now.noisy(&y, eps)?, &now)?;
            y = match grid.get(i + 1) {
                None => f,
                Some(&s) => signal_step(&y, &f, &signal_step_sizes(&now, &Times::constant(self.schedule, s, b)))?,
            };
        }
        Ok(y)
    }

    /// Runs a teacher sampler kind; `Student` is not a teacher sampler and is an error.
    pub fn run(&self, kind: SamplerKind, eps: &Tensor) -> boot_sdk::Result<Tensor> {
        match kind {
            SamplerKind::TeacherDdim(n) => self.ddim(eps, n),
            SamplerKind::TeacherSignalOde(n) => self.signal_ode(eps, n),
            SamplerKind::Student => anyhow::bail!("the student is not a teacher sampler"),
        }
    }
}

/// The one-step student sample `y(eps, t_min)`.
pub fn student_sample(
    student: &dyn Student,
    schedule: &dyn NoiseSchedule,
    eps: &Tensor,
    cond: &Cond,
    w: Option<&[f64]>,
    t_min: f64,
) -> boot_sdk::Result<Tensor> {
    student.forward(eps, &Times::constant(schedule, t_min, eps.dim(0)?), cond, w)
}
