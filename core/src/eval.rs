//! `eval.json`: metrics of each teacher sampler and of the one-step student on the same inputs.

use std::path::Path;
use std::time::{Duration, Instant};

use boot_sdk::serde_json::{self, Map, Value};
use boot_sdk::Student;

use crate::components::Components;
use crate::config::RunConfig;
use crate::fd::FdEval;
use crate::gaussian_fd::MomentAccumulator;
use crate::generate::{generate, sample_inputs};
use crate::metrics::MetricsAccumulator;
use crate::samplers::SamplerKind;

/// Evaluates `teacher_ddim_N` for each configured N and `student_1` against the teacher's ODE solution
/// (DDIM with `eval.reference_steps`) from the same noise, and with `fd` the Fréchet distance of each
/// sampler's decoded samples to the reference statistics; each sampler's `images_per_s` is its sampling
/// throughput at `eval.batch_size`. Without a student (a teacher's own baseline) the `student_1` row is left
/// out. Writes the report to `out` (the run's `eval.json` by default) and returns it.
pub fn evaluate(cfg: &RunConfig, c: &Components, student: Option<&dyn Student>, fd: Option<&FdEval>, out: &Path) -> boot_sdk::Result<Value> {
    let e = &cfg.eval;
    let (t_max, t_min) = (cfg.train.t_max, cfg.train.t_min);
    let mut kinds: Vec<SamplerKind> = e.ddim_steps.iter().map(|&n| SamplerKind::TeacherDdim(n)).collect();
    if student.is_some() {
        kinds.push(SamplerKind::Student);
    }
    // Teacher samplers never read the student; the untrained one stands in for the argument.
    let student = student.unwrap_or(c.student.net.as_ref());
    let mut acc: Vec<MetricsAccumulator> = kinds.iter().map(|_| MetricsAccumulator::default()).collect();
    let mut moments: Vec<MomentAccumulator> = kinds.iter().map(|_| MomentAccumulator::default()).collect();
    let mut elapsed = vec![Duration::ZERO; kinds.len()];
    let density = c.teacher.exact_density();
    let reference_kind = SamplerKind::TeacherDdim(e.reference_steps.max(1));
    let mut first = 0usize;
    while first < e.samples {
        let n = e.batch_size.max(1).min(e.samples - first);
        let inputs = sample_inputs(c, cfg.run.seed, first as u64, n, None)?;
        let reference = generate(c, student, reference_kind, &inputs, t_max, t_min)?;
        for (((kind, a), m), dt) in kinds.iter().zip(acc.iter_mut()).zip(moments.iter_mut()).zip(elapsed.iter_mut()) {
            c.device.synchronize()?;
            let started = Instant::now();
            let samples = generate(c, student, *kind, &inputs, t_max, t_min)?;
            c.device.synchronize()?;
            *dt += started.elapsed();
            a.add(&samples, &reference, &inputs.cond, density)?;
            if let Some(fd) = fd {
                fd.add(m, &c.teacher.decode(&samples)?)?;
            }
        }
        first += n;
    }
    let mut report = Map::new();
    for (((kind, a), m), dt) in kinds.iter().zip(&acc).zip(&moments).zip(&elapsed) {
        let mut metrics = a.finish(density)?;
        if let Some(obj) = metrics.as_object_mut() {
            // Sampling only (no metrics, no FD features), at `eval.batch_size`, the device synchronised.
            obj.insert("images_per_s".into(), (e.samples as f64 / dt.as_secs_f64().max(1e-9)).into());
        }
        if let (Some(fd), Some(obj)) = (fd, metrics.as_object_mut()) {
            let (distance, count) = fd.distance(m)?;
            obj.insert("fd".into(), distance.into());
            obj.insert("fd_samples".into(), count.into());
        }
        report.insert(kind.to_string(), metrics);
    }
    let report = Value::Object(report);
    write_json(out, &report)?;
    Ok(report)
}

/// Writes pretty JSON atomically.
pub fn write_json(path: &Path, value: &Value) -> boot_sdk::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    boot_sdk::io::write_atomic(path, text.as_bytes())
}
