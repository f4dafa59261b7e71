//! The BOOT student built from a diffusers teacher: a fresh student equals the teacher's denoiser at the
//! run's `t_max` for every target time and `w`; the teacher's weights are copied and the new embeddings
//! start at zero and train.

use std::path::PathBuf;

use boot_kit::testing::{build_student, fresh_student_error, StudentSetup};
use boot_plugin_diffusers::DiffusersTeacher;
use boot_sdk::candle::{DType, Device};
use boot_sdk::serde_json::{self, json};
use boot_sdk::{Cond, StudentConfig, TeacherConfig, TeacherContext, Times};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

fn teacher(name: &str) -> std::sync::Arc<dyn boot_sdk::Teacher> {
    let cfg: Box<dyn TeacherConfig> = serde_json::from_value(json!({ "kind": "diffusers", "path": name })).unwrap();
    cfg.build(&TeacherContext { device: Device::Cpu, dtype: DType::F32, base_dir: fixtures() }).unwrap()
}

fn student_config() -> Box<dyn StudentConfig> {
    serde_json::from_value(json!({ "kind": "diffusers-student" })).unwrap()
}

#[test]
fn fresh_student_equals_teacher_at_t_max() {
    for (name, w, cond) in [("v_cosine", false, Cond::none()), ("sample_scaled", true, Cond::classes(vec![Some(2), None, Some(0)]))] {
        let t = teacher(name);
        let schedule = t.native_schedule().unwrap();
        let setup = StudentSetup { w_conditioned: w, t_max: 0.98, prefix: Some("student".into()), ..StudentSetup::default() };
        let built = build_student(student_config().as_ref(), t.as_ref(), schedule.as_ref(), &setup).unwrap();
        let params = t.as_any().downcast_ref::<DiffusersTeacher>().unwrap().weights().len();
        assert_eq!(built.varmap.all_vars().len(), params + if w { 4 } else { 2 }, "{name}: teacher parameters + the new embeddings");
        let eps = boot_sdk::rng::normal(&[1, 2, 3], &t.sample_shape(), &Device::Cpu).unwrap();
        let ws = [1.0, 3.0, 5.0];
        let err = fresh_student_error(built.student.as_ref(), t.as_ref(), schedule.as_ref(), 0.98, &eps, &cond, w.then_some(&ws[..]), &[0.0, 0.3, 0.98]).unwrap();
        assert_eq!(err, 0.0, "{name}");
    }
}

#[test]
fn the_new_embeddings_train() {
    let t = teacher("eps_linear");
    let schedule = t.native_schedule().unwrap();
    let setup = StudentSetup { w_conditioned: true, ..StudentSetup::default() };
    let built = build_student(student_config().as_ref(), t.as_ref(), schedule.as_ref(), &setup).unwrap();
    let eps = boot_sdk::rng::normal(&[4, 5], &t.sample_shape(), &Device::Cpu).unwrap();
    let y = built.student.forward(&eps, &Times::new(schedule.as_ref(), vec![0.2, 0.7]), &Cond::none(), Some(&[2.0, 4.0])).unwrap();
    let grads = y.sqr().unwrap().mean_all().unwrap().backward().unwrap();
    let data = built.varmap.data().lock().unwrap();
    for k in ["boot_time_embedding.weight", "boot_w_embedding.weight", "conv_in.weight", "time_embedding.linear_1.weight"] {
        let g = grads.get(data[k].as_tensor()).unwrap_or_else(|| panic!("no gradient for {k}"));
        assert!(g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0, "zero gradient for {k}");
    }
    assert_eq!(data["boot_time_embedding.weight"].as_tensor().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
}
