//! Snapshots of the EDM teacher's denoiser and of a fresh `edm-student` on fixed inputs, built from their
//! typetag-registered configs (as boot-host builds them) over the parity fixtures' random weights, as
//! rounded summaries (shape, mean, std, min, max, first 6 values; 4 decimals).
//!
//! Inputs are pure functions of fixed seeds (`boot_sdk::rng`): clean images `0.5 * N(0, 1)`, noise
//! `N(0, 1)`, and times on core's `edm` schedule (sigma 0.002..80, rho 7), mapped to VP as a run maps them.
//! Update with `INSTA_UPDATE=always cargo test --release -p boot-plugin-edm --test snapshots`.

use std::path::PathBuf;
use std::sync::Arc;

use boot_models::edm::NetworkSpec;
// Links the plugin: its typetag registrations are the `kind = "edm"` / `"edm-student"` configs built below.
use boot_plugin_edm as _;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_kit::testing::{build_student, StudentSetup};
use boot_sdk::rng::{normal, sample_seeds, Stream};
use boot_sdk::serde_json::{self, json, Value};
use boot_sdk::{Cond, Student, StudentConfig, Teacher, TeacherConfig, TeacherContext, Times};

const SONG: &str = "edmprecond_songunet_ddpmpp";
const ADM: &str = "edmprecond_dhariwalunet_adm";
/// Target times of the snapshots (`t = 1` is sigma 80, the student's teacher-time input).
const T: [f64; 4] = [1.0, 0.7, 0.4, 0.1];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("models").join("tests").join("fixtures").join("edm")
}

/// Mean, std, min, max and the first values, rounded to 4 decimals.
fn summary(t: &Tensor) -> Value {
    let v = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let r = |x: f64| (x * 1e4).round() / 1e4 + 0.0; // + 0.0: no "-0.0"
    json!({
        "shape": t.dims(),
        "mean": r(mean),
        "std": r(std),
        "min": r(v.iter().cloned().fold(f64::INFINITY, f64::min)),
        "max": r(v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)),
        "first": v.iter().take(6).map(|&x| r(x)).collect::<Vec<_>>(),
    })
}

/// Core's `edm` schedule (defaults) at `t`, as the VP times a run passes: `alpha = 1 / sqrt(1 + s^2)`,
/// `sigma = s alpha`, `lambda = ln s` with `s = (smin^(1/rho) + t (smax^(1/rho) - smin^(1/rho)))^rho`.
/// EDM's rho-spaced sigmas (0.002 to 80, rho 7) as a VP schedule, the times of [`edm_times`].
#[derive(Debug)]
struct EdmSigmas;

impl boot_sdk::NoiseSchedule for EdmSigmas {
    fn alpha(&self, t: f64) -> f64 {
        edm_times(&[t]).alpha[0]
    }
    fn sigma(&self, t: f64) -> f64 {
        edm_times(&[t]).sigma[0]
    }
}

fn edm_times(t: &[f64]) -> Times {
    let (a, b, rho) = (0.002f64.powf(1.0 / 7.0), 80f64.powf(1.0 / 7.0), 7.0);
    let s: Vec<f64> = t.iter().map(|t| (a + t * (b - a)).powf(rho)).collect();
    let alpha: Vec<f64> = s.iter().map(|s| 1.0 / (1.0 + s * s).sqrt()).collect();
    Times { t: t.to_vec(), sigma: s.iter().zip(&alpha).map(|(s, a)| s * a).collect(), lambda: s.iter().map(|s| s.ln()).collect(), alpha }
}

/// Clean images `x0 = 0.5 N(0, 1)` and noise `eps`, 4 each, from fixed seeds.
fn inputs(seed: u64) -> (Tensor, Tensor) {
    let x0 = (normal(&sample_seeds(seed, Stream::Init, 0, 0, 4), &[3, 16, 16], &Device::Cpu).unwrap() * 0.5).unwrap();
    let eps = normal(&sample_seeds(seed, Stream::Noise, 0, 0, 4), &[3, 16, 16], &Device::Cpu).unwrap();
    (x0, eps)
}

fn teacher_config(name: &str) -> Box<dyn TeacherConfig> {
    serde_json::from_value(json!({
        "kind": "edm",
        "checkpoint": format!("{name}.safetensors"),
        "network": format!("{name}.config.json"),
    }))
    .expect("edm teacher config")
}

fn teacher(name: &str) -> (Box<dyn TeacherConfig>, Arc<dyn Teacher>) {
    // Calling into the plugin (not only naming its types) makes the linker keep the library, whose
    // typetag registrations are what `teacher_config` deserializes through.
    let spec = NetworkSpec::from_json_file(&fixtures().join(format!("{name}.config.json"))).expect("network description");
    assert_eq!(spec.precond.map(|p| p.class_name()), Some("EDMPrecond"));
    let cfg = teacher_config(name);
    let ctx = TeacherContext { device: Device::Cpu, dtype: DType::F32, base_dir: fixtures() };
    let t = cfg.build(&ctx).expect("edm teacher");
    assert_eq!(t.sample_shape(), spec.arch.input_shape());
    (cfg, t)
}

fn fresh_student(name: &str) -> (Arc<dyn Teacher>, Box<dyn Student>) {
    let (_, teacher) = teacher(name);
    let student_cfg: Box<dyn StudentConfig> = serde_json::from_value(json!({ "kind": "edm-student", "sigma_max": 80.0 })).unwrap();
    let setup = StudentSetup { t_max: 1.0, prefix: Some("student".into()), base_dir: fixtures(), ..StudentSetup::default() };
    let student = build_student(student_cfg.as_ref(), teacher.as_ref(), &EdmSigmas, &setup).expect("edm student").student;
    (teacher, student)
}

#[test]
fn songunet_ddpmpp_teacher_denoise() {
    let (_, teacher) = teacher(SONG);
    assert_eq!(teacher.sample_shape(), [3, 16, 16]);
    let (x0, eps) = inputs(21);
    let times = edm_times(&T);
    let x_t = times.noisy(&x0, &eps).unwrap();
    let d = teacher.denoise(&x_t, &times, &Cond::none()).unwrap();
    insta::assert_json_snapshot!("edm_songunet_ddpmpp_teacher_denoise", summary(&d));
}

#[test]
fn songunet_ddpmpp_fresh_student_forward() {
    let (_, student) = fresh_student(SONG);
    let (_, eps) = inputs(22);
    let y = student.forward(&eps, &edm_times(&T), &Cond::none(), None).unwrap();
    insta::assert_json_snapshot!("edm_songunet_ddpmpp_student_forward", summary(&y));
}

#[test]
fn dhariwalunet_adm_teacher_denoise() {
    let (_, teacher) = teacher(ADM);
    assert_eq!(teacher.cond_spec().num_classes, Some(10));
    let (x0, eps) = inputs(23);
    let times = edm_times(&T);
    let x_t = times.noisy(&x0, &eps).unwrap();
    let cond = Cond::classes(vec![Some(3), Some(7), None, Some(0)]);
    let d = teacher.denoise(&x_t, &times, &cond).unwrap();
    insta::assert_json_snapshot!("edm_dhariwalunet_adm_teacher_denoise", summary(&d));
    let null = teacher.denoise(&x_t, &times, &cond.with_null_class()).unwrap();
    insta::assert_json_snapshot!("edm_dhariwalunet_adm_teacher_denoise_null", summary(&null));
}

#[test]
fn dhariwalunet_adm_fresh_student_forward() {
    let (_, student) = fresh_student(ADM);
    let (_, eps) = inputs(24);
    let cond = Cond::classes(vec![Some(1), None, Some(9), Some(4)]);
    let y = student.forward(&eps, &edm_times(&T), &cond, None).unwrap();
    insta::assert_json_snapshot!("edm_dhariwalunet_adm_student_forward", summary(&y));
}
