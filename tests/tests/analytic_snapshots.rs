//! Snapshots of the analytic plugin's teacher and fresh student on fixed inputs, loaded the way boot-host
//! loads them (the plugin library, then its typetag-registered configs), as rounded summaries.

mod common;

use std::sync::Once;

use boot_core::schedules::CosineSchedule;
use boot_core::seeded_init::SeededVarMap;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::candle_nn::VarMap;
use boot_sdk::rng::{normal, sample_seeds, Stream};
use boot_sdk::{Cond, StudentConfig, StudentContext, TeacherConfig, TeacherContext, Times};
use serde_json::json;

fn load_plugin() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let path = common::bin_dir().join("libboot_plugin_analytic.so");
        // SAFETY: the workspace's own plugin, built with this sdk; never unloaded.
        let lib = unsafe { libloading::Library::new(&path) }.unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
        std::mem::forget(lib);
    });
}

/// Mean, std, min, max and the first values, rounded to 4 decimals.
fn summary(t: &Tensor) -> serde_json::Value {
    let v = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let r = |x: f64| (x * 1e4).round() / 1e4;
    json!({
        "shape": t.dims(),
        "mean": r(mean),
        "std": r(std),
        "min": r(v.iter().cloned().fold(f64::INFINITY, f64::min)),
        "max": r(v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)),
        "first": v.iter().take(6).map(|&x| r(x)).collect::<Vec<_>>(),
    })
}

fn inputs() -> (Tensor, Times, Cond) {
    let eps = normal(&sample_seeds(11, Stream::Noise, 0, 0, 4), &[3, 16, 16], &Device::Cpu).unwrap();
    let times = Times::new(&CosineSchedule, vec![0.9, 0.6, 0.3, 0.05]);
    (eps, times, Cond::classes(vec![Some(0), Some(1), None, Some(3)]))
}

fn teacher_config() -> Box<dyn TeacherConfig> {
    serde_json::from_value(json!({ "kind": "analytic" })).expect("analytic teacher config")
}

fn context() -> TeacherContext {
    TeacherContext { device: Device::Cpu, dtype: DType::F32, base_dir: ".".into() }
}

#[test]
fn analytic_teacher_outputs() {
    load_plugin();
    let teacher = teacher_config().build(&context()).unwrap();
    let (eps, times, cond) = inputs();
    let x_t = times.noisy(&(&eps * 0.3).unwrap(), &eps).unwrap();
    let f = teacher.denoise(&x_t, &times, &cond).unwrap();
    insta::assert_json_snapshot!("analytic_teacher_denoise", summary(&f));
    let unconditional = teacher.denoise(&x_t, &times, &cond.with_null_class()).unwrap();
    insta::assert_json_snapshot!("analytic_teacher_denoise_null", summary(&unconditional));
}

#[test]
fn analytic_fresh_student_outputs() {
    load_plugin();
    let teacher = teacher_config().build(&context()).unwrap();
    let student_cfg: Box<dyn StudentConfig> = serde_json::from_value(json!({ "kind": "analytic-unet" })).unwrap();
    let vars = VarMap::new();
    let student = student_cfg
        .build(&StudentContext {
            vb: SeededVarMap::builder(&vars, 5, DType::F32, &Device::Cpu),
            varmap: &vars,
            teacher: teacher.as_ref(),
            schedule: &boot_core::schedules::CosineSchedule,
            w_conditioned: false,
            t_min: 0.0,
            t_max: 0.99,
            device: Device::Cpu,
            base_dir: ".".into(),
        })
        .unwrap();
    let (eps, times, cond) = inputs();
    let y = student.forward(&eps, &times, &cond, None).unwrap();
    insta::assert_json_snapshot!("analytic_student_forward", summary(&y));
}
