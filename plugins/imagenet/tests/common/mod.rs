//! Shared helpers: the `adm_unet_c10` fixture as a teacher config, students built over a `VarMap`, and
//! tensor comparisons. Teachers and students are built on the run-time test device in the test dtype
//! (`device.rs`: `BOOT_TEST_DEVICE`, `BOOT_TEST_DTYPE`), or on the CPU in f32 with [`cpu_ctx`] (the snapshots).

#![allow(dead_code)]

// One copy for every test crate: the sdk's.
#[path = "../../../../sdk/tests/common/device.rs"]
mod device;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_kit::testing::{build_student as build_student_with, BuiltStudent, StudentSetup};
use boot_sdk::candle_nn::VarMap;
use boot_sdk::serde_json::{self, json, Value};
use boot_sdk::{InputError, Student, StudentConfig, Teacher, TeacherConfig, TeacherContext, Times};
pub use device::*;

/// `models/tests/fixtures/adm` (the model library's parity fixtures).
pub fn adm_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("models").join("tests").join("fixtures").join("adm")
}

/// This crate's `tests/fixtures` (the `.pt` checkpoints).
pub fn own_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

/// The io tensors of `adm_unet_c10`.
pub fn io() -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&adm_fixtures().join("adm_unet_c10.io.safetensors"), &Device::Cpu).expect("io fixture")
}

/// A teacher context on `device` in `dtype`, resolving paths against `models/tests/fixtures/adm`.
pub fn ctx_on(device: Device, dtype: DType) -> TeacherContext {
    TeacherContext { device, dtype, base_dir: adm_fixtures() }
}

/// [`ctx_on`] the test device in the test dtype.
pub fn ctx() -> TeacherContext {
    ctx_on(test_device(), test_dtype())
}

/// [`ctx_on`] the CPU in f32.
pub fn cpu_ctx() -> TeacherContext {
    ctx_on(Device::Cpu, DType::F32)
}

/// The `[teacher]` table for `adm_unet_c10` (the fixture README's `create_model` flags), with `extra`
/// keys merged in.
pub fn teacher_json(extra: Value) -> Value {
    let mut v = json!({
        "kind": "adm",
        "checkpoint": "adm_unet_c10.safetensors",
        "image_size": 16,
        "num_channels": 32,
        "num_res_blocks": 1,
        "channel_mult": [1, 1],
        "attention_resolutions": [16, 8],
        "num_head_channels": 8,
        "learn_sigma": true,
        "class_cond": true,
        "num_classes": 10,
        "resblock_updown": true,
        "use_new_attention_order": true,
        "use_scale_shift_norm": true,
        "noise_schedule": "cosine",
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// Keeps the plugin library linked into the test binary: its typetag registrations (`kind = "adm"`) live
/// there, and a binary that calls none of its functions drops it at link time.
fn link_plugin() {
    std::hint::black_box(boot_plugin_imagenet::checkpoint::read_checkpoint as fn(&std::path::Path, Option<&str>) -> _);
}

/// The parsed teacher config.
pub fn teacher_config(extra: Value) -> Box<dyn TeacherConfig> {
    link_plugin();
    serde_json::from_value(teacher_json(extra)).expect("teacher config")
}

/// The teacher built on the test device in the test dtype.
pub fn teacher(extra: Value) -> Arc<dyn Teacher> {
    teacher_in(&ctx(), extra)
}

/// The teacher built in `ctx`.
pub fn teacher_in(ctx: &TeacherContext, extra: Value) -> Arc<dyn Teacher> {
    teacher_config(extra).build(ctx).expect("teacher")
}

/// Values of `x` (any device and float dtype) as `f64`.
pub fn f64v(x: &Tensor) -> Vec<f64> {
    host_vec(x)
}

/// `||a - b|| / ||b||`.
pub fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (f64v(a), f64v(b));
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    num / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

/// `max |a - b|`.
pub fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    f64v(a).iter().zip(f64v(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// The one-line text of an [`InputError`] (fails on any other error, or on a multi-line one).
pub fn input_error(e: &boot_sdk::anyhow::Error) -> String {
    let ie = e.downcast_ref::<InputError>().unwrap_or_else(|| panic!("not an InputError: {e:#}"));
    let line = ie.to_string();
    assert!(!line.contains('\n'), "multi-line error: {line}");
    line
}

/// Times of the given `t` on `schedule`.
pub fn times(schedule: &dyn boot_sdk::NoiseSchedule, t: &[f64]) -> Times {
    Times::new(schedule, t.to_vec())
}

/// Standard normal `[n, 3, 16, 16]` from per-sample seeds `first..first + n`, on the CPU in f32 (`dev(..)`
/// moves it to the test device and dtype).
pub fn noise(first: u64, n: usize) -> Tensor {
    boot_sdk::rng::normal(&(first..first + n as u64).collect::<Vec<_>>(), &[3, 16, 16], &Device::Cpu).unwrap()
}

/// A student and the variables behind it.
pub struct Built {
    pub teacher: Arc<dyn Teacher>,
    pub student: Box<dyn Student>,
    pub varmap: VarMap,
}

/// Builds `[student] kind = "adm-student"` (with `student_extra` keys) for the teacher with `teacher_extra`,
/// on the test device: the teacher in the test dtype, the student's variables in f32 (it computes in the
/// dtype of its input, as a mixed-precision run's).
pub fn build_student(teacher_extra: Value, student_extra: Value, w_conditioned: bool, t_max: f64, prefix: Option<&str>) -> Built {
    build_student_in(&ctx(), teacher_extra, student_extra, w_conditioned, t_max, prefix)
}

/// [`build_student`] with the teacher built in `tctx`.
pub fn build_student_in(tctx: &TeacherContext, teacher_extra: Value, student_extra: Value, w_conditioned: bool, t_max: f64, prefix: Option<&str>) -> Built {
    let cfg = teacher_config(teacher_extra);
    let teacher = cfg.build(tctx).expect("teacher");
    let mut sj = json!({ "kind": "adm-student" });
    if let (Some(o), Some(e)) = (sj.as_object_mut(), student_extra.as_object()) {
        o.extend(e.clone());
    }
    let scfg: Box<dyn StudentConfig> = serde_json::from_value(sj).expect("student config");
    let schedule = teacher.native_schedule().expect("the adm teacher's schedule");
    let setup = StudentSetup { w_conditioned, t_max, prefix: prefix.map(str::to_string), device: tctx.device.clone(), base_dir: adm_fixtures(), ..StudentSetup::default() };
    let BuiltStudent { student, varmap } = build_student_with(scfg.as_ref(), teacher.as_ref(), schedule.as_ref(), &setup).expect("student");
    Built { teacher, student, varmap }
}
