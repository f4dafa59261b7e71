//! A test kit for plugin authors: build a student as the host does, check that a fresh teacher-initialised
//! student equals its teacher at `t_max`, and measure parity errors against reference outputs.

use std::path::PathBuf;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_sdk::{Cond, InputError, NoiseSchedule, Student, StudentConfig, StudentContext, Teacher, Times};

/// How a test builds a student (what the host takes from the run config).
#[derive(Debug, Clone)]
pub struct StudentSetup {
    /// Whether the student takes `w`.
    pub w_conditioned: bool,
    /// The run's `t_min`.
    pub t_min: f64,
    /// The run's `t_max`.
    pub t_max: f64,
    /// Prefix of the student's variables (the host uses none).
    pub prefix: Option<String>,
    /// Device of the variables.
    pub device: Device,
    /// Folder relative paths are resolved against.
    pub base_dir: PathBuf,
}

impl Default for StudentSetup {
    fn default() -> Self {
        Self { w_conditioned: false, t_min: 0.0, t_max: 0.99, prefix: None, device: Device::Cpu, base_dir: PathBuf::from(".") }
    }
}

/// A student and its variables.
pub struct BuiltStudent {
    /// The student.
    pub student: Box<dyn Student>,
    /// Its variables (f32, as the host keeps them).
    pub varmap: VarMap,
}

/// Builds `config`'s student for `teacher` on the run schedule `schedule`, over a fresh f32 variable map.
pub fn build_student(config: &dyn StudentConfig, teacher: &dyn Teacher, schedule: &dyn NoiseSchedule, setup: &StudentSetup) -> boot_sdk::Result<BuiltStudent> {
    let varmap = VarMap::new();
    let root = VarBuilder::from_varmap(&varmap, DType::F32, &setup.device);
    let vb = match &setup.prefix {
        Some(p) => root.pp(p),
        None => root,
    };
    let ctx = StudentContext {
        vb,
        varmap: &varmap,
        teacher,
        schedule,
        w_conditioned: setup.w_conditioned,
        t_min: setup.t_min,
        t_max: setup.t_max,
        device: setup.device.clone(),
        base_dir: setup.base_dir.clone(),
    };
    let student = config.build(&ctx)?;
    drop(ctx);
    Ok(BuiltStudent { student, varmap })
}

/// The largest relative error, over the target times `ts`, between a fresh teacher-initialised student
/// `y(eps, t, cond, w)` and the teacher's denoiser at `t_max` on `x_{t_max} = eps`: zero up to rounding
/// when the new embeddings are zero and the teacher time is the run's `t_max`.
pub fn fresh_student_error(
    student: &dyn Student,
    teacher: &dyn Teacher,
    schedule: &dyn NoiseSchedule,
    t_max: f64,
    eps: &Tensor,
    cond: &Cond,
    w: Option<&[f64]>,
    ts: &[f64],
) -> boot_sdk::Result<f64> {
    let n = eps.dim(0)?;
    let want = teacher.denoise(eps, &Times::constant(schedule, t_max, n), cond)?;
    let mut worst = 0.0f64;
    for &t in ts {
        let got = student.forward(eps, &Times::constant(schedule, t, n), cond, w)?;
        worst = worst.max(rel_err(&got, &want)?);
    }
    Ok(worst)
}

/// `||a - b|| / ||b||` over all elements, in f64.
pub fn rel_err(a: &Tensor, b: &Tensor) -> boot_sdk::Result<f64> {
    boot_sdk::anyhow::ensure!(a.dims() == b.dims(), "shapes differ: {:?} vs {:?}", a.dims(), b.dims());
    let (a, b) = (values(a)?, values(b)?);
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    Ok(num / b.iter().map(|y| y * y).sum::<f64>().sqrt())
}

/// The largest absolute difference, in f64.
pub fn max_abs(a: &Tensor, b: &Tensor) -> boot_sdk::Result<f64> {
    boot_sdk::anyhow::ensure!(a.dims() == b.dims(), "shapes differ: {:?} vs {:?}", a.dims(), b.dims());
    Ok(values(a)?.iter().zip(values(b)?).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max))
}

/// Every element as f64, on the host.
pub fn values(x: &Tensor) -> boot_sdk::Result<Vec<f64>> {
    Ok(x.to_device(&Device::Cpu)?.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?)
}

/// The one-line message of an [`InputError`] somewhere in `e`'s chain; panics (a test failure) when there
/// is none or it spans several lines.
pub fn input_error_line(e: &boot_sdk::anyhow::Error) -> String {
    let ie = e.chain().find_map(|c| c.downcast_ref::<InputError>()).unwrap_or_else(|| panic!("not an InputError: {e:#}"));
    let line = ie.to_string();
    assert!(!line.contains('\n'), "multi-line error: {line}");
    line
}

/// A teacher of no family (it returns its input), for "this student needs that teacher" tests.
#[derive(Debug)]
pub struct ForeignTeacher(pub [usize; 3]);

impl Teacher for ForeignTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        self.0
    }
    fn denoise(&self, x_t: &Tensor, _: &Times, _: &Cond) -> boot_sdk::Result<Tensor> {
        Ok(x_t.clone())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A snapshot-friendly summary of a tensor: shape, mean, std, min, max and the first 6 values, rounded to
/// `decimals` (insta snapshots of plugin outputs stay readable and stable across CPUs).
pub fn summary(t: &Tensor, decimals: i32) -> boot_sdk::Result<boot_sdk::serde_json::Value> {
    let v = values(t)?;
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let scale = 10f64.powi(decimals);
    let r = |x: f64| (x * scale).round() / scale + 0.0; // + 0.0: no "-0.0"
    Ok(boot_sdk::serde_json::json!({
        "shape": t.dims(),
        "mean": r(mean),
        "std": r(std),
        "min": r(v.iter().cloned().fold(f64::INFINITY, f64::min)),
        "max": r(v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)),
        "first": v.iter().take(6).map(|&x| r(x)).collect::<Vec<_>>(),
    }))
}
