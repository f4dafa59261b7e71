//! Producing samples: the evaluation inputs of sample `i` (noise, conditioning, guidance weight) depend on
//! the run seed and `i` alone, so every sampler sees the same inputs whatever the batch size.

use boot_sdk::candle::Tensor;
use boot_sdk::rng::{normal, sample_seeds, Stream};
use boot_sdk::{Cond, Student};

use crate::components::Components;
use crate::samplers::{student_sample, SamplerKind, TeacherSampling};

/// The `step` value that evaluation draws use, apart from every training step.
pub const EVAL_STEP: u64 = u64::MAX;

/// The inputs of a batch of evaluation samples.
pub struct SampleInputs {
    /// Initial noise `[B, C, H, W]`.
    pub eps: Tensor,
    /// Conditioning.
    pub cond: Cond,
    /// Guidance weights.
    pub w: Option<Vec<f64>>,
}

/// Inputs of evaluation samples `first..first + n`; `noise` replaces the drawn noise when given.
pub fn sample_inputs(c: &Components, seed: u64, first: u64, n: usize, noise: Option<Tensor>) -> boot_sdk::Result<SampleInputs> {
    let eps = match noise {
        Some(t) => t.to_device(&c.device)?,
        None => normal(&sample_seeds(seed, Stream::Noise, EVAL_STEP, first, n), &c.sample_shape(), &c.device)?,
    };
    let cond = c.teacher.sample_cond(&sample_seeds(seed, Stream::Cond, EVAL_STEP, first, n))?;
    let w = c.guidance.sample_w(&sample_seeds(seed, Stream::Guidance, EVAL_STEP, first, n));
    Ok(SampleInputs { eps, cond, w })
}

/// Runs sampler `kind` on `inputs`; `student` is used for [`SamplerKind::Student`].
pub fn generate(c: &Components, student: &dyn Student, kind: SamplerKind, inputs: &SampleInputs, t_max: f64, t_min: f64) -> boot_sdk::Result<Tensor> {
    match kind {
        SamplerKind::Student => student_sample(student, c.schedule.as_ref(), &inputs.eps, &inputs.cond, inputs.w.as_deref(), t_min),
        teacher_kind => TeacherSampling {
            teacher: c.teacher.as_ref(),
            guidance: c.guidance.as_ref(),
            schedule: c.schedule.as_ref(),
            cond: &inputs.cond,
            w: inputs.w.as_deref(),
            t_max,
            t_min,
        }
        .run(teacher_kind, &inputs.eps),
    }
}
