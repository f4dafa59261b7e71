//! Building the run's components from its config.

use std::path::PathBuf;
use std::sync::Arc;

use boot_sdk::candle::{DType, Device};
use boot_sdk::candle_nn::VarMap;
use boot_sdk::{Guidance, NoiseSchedule, Solver, Student, StudentContext, Teacher, TeacherContext};

use crate::config::RunConfig;
use crate::device::parse_device;
use crate::precision::{CastStudent, CastTeacher};
use crate::schedules::CosineSchedule;
use crate::seeded_init::SeededVarMap;

/// Where a config came from: its name for messages, and the folder its relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The config file's path as given.
    pub config_name: String,
    /// The config file's folder.
    pub base_dir: PathBuf,
}

/// A student and the variables behind it.
pub struct StudentVars {
    /// The student network.
    pub net: Box<dyn Student>,
    /// Its parameters.
    pub vars: VarMap,
}

/// Everything a run uses, built from its config.
pub struct Components {
    /// Device of the run.
    pub device: Device,
    /// The frozen teacher.
    pub teacher: Arc<dyn Teacher>,
    /// The noise schedule.
    pub schedule: Arc<dyn NoiseSchedule>,
    /// Target solver.
    pub solver: Box<dyn Solver>,
    /// Guidance.
    pub guidance: Box<dyn Guidance>,
    /// The trained student.
    pub student: StudentVars,
    /// The EMA copy of the student.
    pub ema: StudentVars,
}

impl Components {
    /// Builds teacher, schedule, solver, guidance, student and EMA student from `cfg`. With a half
    /// `run.dtype` the teacher is built in it and both networks are wrapped to compute in it while taking
    /// and giving `f32` (see [`crate::precision`]); the students' variables stay `f32`.
    pub fn build(cfg: &RunConfig, ctx: &RunContext) -> boot_sdk::Result<Self> {
        let device = parse_device(&cfg.run.device)?;
        cfg.run.dtype.check_device(&device)?;
        let half = cfg.run.dtype.half();
        let dtype = half.unwrap_or(DType::F32);
        let tctx = TeacherContext { device: device.clone(), dtype, base_dir: ctx.base_dir.clone() };
        let teacher = cfg.teacher.build(&tctx)?;
        let schedule: Arc<dyn NoiseSchedule> = match (&cfg.schedule, teacher.native_schedule()) {
            (Some(s), _) => s.build()?,
            (None, Some(native)) => native,
            (None, None) => Arc::new(CosineSchedule),
        };
        let solver = cfg.solver.build()?;
        let guidance = cfg.guidance.build()?;
        let build_student = |vars: VarMap| -> boot_sdk::Result<StudentVars> {
            let net = cfg.student.build(&StudentContext {
                vb: SeededVarMap::builder(&vars, cfg.run.seed, DType::F32, &device),
                varmap: &vars,
                teacher: teacher.as_ref(),
                schedule: schedule.as_ref(),
                w_conditioned: guidance.w_conditioned(),
                t_min: cfg.train.t_min,
                t_max: cfg.train.t_max,
                device: device.clone(),
                base_dir: ctx.base_dir.clone(),
            })?;
            let net: Box<dyn Student> = match half {
                Some(dtype) => Box::new(CastStudent { inner: net, dtype }),
                None => net,
            };
            Ok(StudentVars { net, vars })
        };
        let student = build_student(VarMap::new())?;
        let ema = build_student(VarMap::new())?;
        let teacher: Arc<dyn Teacher> = match half {
            Some(dtype) => Arc::new(CastTeacher { inner: teacher, dtype }),
            None => teacher,
        };
        Ok(Self { device, teacher, schedule, solver, guidance, student, ema })
    }

    /// Shape `[C, H, W]` of one sample.
    pub fn sample_shape(&self) -> [usize; 3] {
        self.teacher.sample_shape()
    }
}
