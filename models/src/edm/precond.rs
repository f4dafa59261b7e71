//! EDM's preconditioners (`EDMPrecond`, `VPPrecond`, `VEPrecond`): `D(x; sigma) = c_skip x + c_out F(c_in x,
//! c_noise, labels)`.
//!
//! The coefficients are computed per sample in the compute precision, in the same order of operations as
//! the official float32 code (Python scalars are rounded to float32 first, `a / tensor` is `reciprocal * a`).
//! In particular `VPPrecond`'s `c_noise` evaluates `ln(1 + sigma^2)` naively: in float32 it loses precision at
//! small sigma (quirk 8 of the fixtures: `c_noise(0.002)` is 0.0403283 in float32 against 0.0398021 exact).
//! This port reproduces the float32 value on purpose, because that is what the released networks were trained
//! and evaluated with; in `f64` the same formula is exact enough.

use super::config::PrecondConfig;

/// Arithmetic in the compute precision (`f32` or `f64`).
pub trait Real: Copy + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> + std::ops::Mul<Output = Self> + std::ops::Div<Output = Self> + std::ops::Neg<Output = Self> {
    /// Rounds an `f64` (a Python scalar) to this precision.
    fn of(v: f64) -> Self;
    /// Widens to `f64`.
    fn wide(self) -> f64;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Exponential.
    fn exp(self) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn wide(self) -> f64 {
        self as f64
    }
    fn ln(self) -> Self {
        f32::ln(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn wide(self) -> f64 {
        self
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
}

/// The four preconditioning coefficients at one sigma.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients<R> {
    /// Weight of the skip connection.
    pub c_skip: R,
    /// Weight of the network output.
    pub c_out: R,
    /// Input scale.
    pub c_in: R,
    /// The noise label fed to the network.
    pub c_noise: R,
}

/// A preconditioner: the official formulas of one wrapper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precond {
    /// Kind and hyper-parameters.
    pub config: PrecondConfig,
}

impl Precond {
    /// Wraps a config.
    pub fn new(config: PrecondConfig) -> Self {
        Self { config }
    }

    /// Coefficients at `sigma` (already rounded to `R`), with the official order of operations.
    pub fn coefficients<R: Real>(&self, sigma: R) -> Coefficients<R> {
        let one = R::of(1.0);
        let s2 = sigma * sigma;
        match self.config {
            PrecondConfig::Edm { sigma_data, .. } => {
                let sd2 = R::of(sigma_data * sigma_data);
                Coefficients {
                    c_skip: (one / (s2 + sd2)) * sd2,
                    c_out: sigma * R::of(sigma_data) / (s2 + sd2).sqrt(),
                    c_in: one / (s2 + sd2).sqrt(),
                    c_noise: sigma.ln() / R::of(4.0),
                }
            }
            PrecondConfig::Vp { m, .. } => Coefficients {
                c_skip: one,
                c_out: -sigma,
                c_in: one / (s2 + one).sqrt(),
                c_noise: R::of(m - 1.0) * self.vp_sigma_inv(sigma),
            },
            PrecondConfig::Ve { .. } => Coefficients { c_skip: one, c_out: sigma, c_in: one, c_noise: (R::of(0.5) * sigma).ln() },
        }
    }

    /// `VPPrecond.sigma_inv`: `(sqrt(beta_min^2 + 2 beta_d ln(1 + sigma^2)) - beta_min) / beta_d`
    /// (0 for other kinds).
    pub fn vp_sigma_inv<R: Real>(&self, sigma: R) -> R {
        match self.config {
            PrecondConfig::Vp { beta_d, beta_min, .. } => {
                let l = (R::of(1.0) + sigma * sigma).ln();
                ((R::of(beta_min * beta_min) + R::of(2.0 * beta_d) * l).sqrt() - R::of(beta_min)) / R::of(beta_d)
            }
            _ => R::of(0.0),
        }
    }

    /// `VPPrecond.sigma(t)`: `sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1)` (0 for other kinds).
    pub fn vp_sigma<R: Real>(&self, t: R) -> R {
        match self.config {
            PrecondConfig::Vp { beta_d, beta_min, .. } => {
                ((R::of(0.5 * beta_d) * (t * t) + R::of(beta_min) * t).exp() - R::of(1.0)).sqrt()
            }
            _ => R::of(0.0),
        }
    }

    /// The `sigma_min` the official object stores (VP: `sigma(epsilon_t)` evaluated in float32).
    pub fn sigma_min(&self) -> f64 {
        match self.config {
            PrecondConfig::Edm { sigma_min, .. } | PrecondConfig::Ve { sigma_min, .. } => sigma_min,
            PrecondConfig::Vp { epsilon_t, .. } => self.vp_sigma(epsilon_t as f32).wide(),
        }
    }

    /// The `sigma_max` the official object stores (VP: `sigma(1)` evaluated in float32).
    pub fn sigma_max(&self) -> f64 {
        match self.config {
            PrecondConfig::Edm { sigma_max, .. } | PrecondConfig::Ve { sigma_max, .. } => sigma_max,
            PrecondConfig::Vp { .. } => self.vp_sigma(1f32).wide(),
        }
    }
}
