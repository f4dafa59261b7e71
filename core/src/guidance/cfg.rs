//! Classifier-free guidance (Eq. 9): `f~ = f(x, t, n) + w (f(x, t, c) - f(x, t, n))`.

use boot_sdk::candle::Tensor;
use boot_sdk::error::input_error;
use boot_sdk::threshold::Threshold;
use boot_sdk::{Cond, Guidance, GuidanceConfig, Teacher, Times};
use serde::Deserialize;

/// How the guidance weight is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CfgWeight {
    /// The same `w` for every sample; the student does not see `w`.
    Fixed(f64),
    /// `w ~ U[min, max]` per sample; the student is conditioned on `w`.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

/// Classifier-free guidance with conditional and null passes in one batched teacher call.
#[derive(Debug, Clone, Copy)]
pub struct Cfg {
    /// Guidance weight choice.
    pub weight: CfgWeight,
    /// Post-processing of the guided prediction.
    pub threshold: Threshold,
}

impl Guidance for Cfg {
    fn sample_w(&self, seeds: &[u64]) -> Option<Vec<f64>> {
        Some(match self.weight {
            CfgWeight::Fixed(w) => vec![w; seeds.len()],
            CfgWeight::Uniform { min, max } => boot_sdk::rng::uniform(seeds, min, max),
        })
    }
    fn w_conditioned(&self) -> bool {
        matches!(self.weight, CfgWeight::Uniform { .. })
    }
    fn denoise(&self, teacher: &dyn Teacher, x: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        let b = x.dim(0)?;
        let fixed;
        let w = match (w, self.weight) {
            (Some(w), _) => w,
            (None, CfgWeight::Fixed(v)) => {
                fixed = vec![v; b];
                &fixed
            }
            (None, CfgWeight::Uniform { .. }) => anyhow::bail!("cfg guidance with random w needs per-sample weights"),
        };
        let null = teacher.null_cond(cond)?;
        let both = Cond::cat(&[cond, &null])?;
        let x2 = Tensor::cat(&[x, x], 0)?;
        let times2 = Times {
            t: [times.t.clone(), times.t.clone()].concat(),
            alpha: [times.alpha.clone(), times.alpha.clone()].concat(),
            sigma: [times.sigma.clone(), times.sigma.clone()].concat(),
            lambda: [times.lambda.clone(), times.lambda.clone()].concat(),
        };
        let f = teacher.denoise(&x2, &times2, &both)?;
        let (f_c, f_n) = (f.narrow(0, 0, b)?, f.narrow(0, b, b)?);
        let w = boot_sdk::times::column(w, f.dtype(), x.device())?;
        let guided = (&f_n + (f_c - &f_n)?.broadcast_mul(&w)?)?;
        self.threshold.apply(&guided)
    }
}

/// `[guidance] kind = "cfg"` with either `w = 7.5` (fixed) or `w_min = 1.0, w_max = 5.0` (per-sample,
/// student conditioned on w), and optional `threshold`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CfgConfig {
    /// Fixed guidance weight.
    pub w: Option<f64>,
    /// Lower bound of per-sample weights.
    pub w_min: Option<f64>,
    /// Upper bound of per-sample weights.
    pub w_max: Option<f64>,
    /// Post-processing of the guided prediction (default none).
    #[serde(default)]
    pub threshold: Threshold,
}

boot_sdk::register! {
    guidance "cfg" => "classifier-free guidance, fixed w or per-sample w in [w_min, w_max]";
    impl GuidanceConfig for CfgConfig {
        fn build(&self) -> boot_sdk::Result<Box<dyn Guidance>> {
            let weight = match (self.w, self.w_min, self.w_max) {
                (Some(w), None, None) => CfgWeight::Fixed(w),
                (None, Some(min), Some(max)) if min <= max => CfgWeight::Uniform { min, max },
                (None, Some(_), Some(_)) => return input_error("", "guidance.w_min", "must not exceed guidance.w_max"),
                _ => return input_error("", "guidance", "cfg needs either `w` or both `w_min` and `w_max`"),
            };
            Ok(Box::new(Cfg { weight, threshold: self.threshold }))
        }
    }
}
