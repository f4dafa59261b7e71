//! The BOOT student built from the IF stage I teacher: a fresh student equals the teacher's denoiser at
//! `t_max` for every target time and `w` (conditioned on the same text embeddings, which the UNet's text
//! addition embedding also sees), its new embeddings train, and snapshots of the teacher's guided
//! (dynamic-thresholded) prediction and of a fresh student on fixed inputs (rounded summaries; update with
//! `INSTA_UPDATE=always cargo test --release -p boot-plugin-deepfloyd-if --test if_student`).

use std::path::PathBuf;
use std::sync::Arc;

use boot_core::guidance::{Cfg, CfgWeight};
use boot_kit::testing::{build_student, fresh_student_error, summary, StudentSetup};
use boot_plugin_deepfloyd_if::IfTeacher;
use boot_sdk::candle::{DType, Device};
use boot_sdk::serde_json::{self, json};
use boot_sdk::threshold::Threshold;
use boot_sdk::{Guidance, StudentConfig, Teacher, TeacherConfig, TeacherContext, Times};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

fn teacher() -> Arc<dyn Teacher> {
    let cfg: Box<dyn TeacherConfig> = serde_json::from_value(json!({ "kind": "if", "path": "if1-tiny", "prompts": "prompts.txt" })).unwrap();
    cfg.build(&TeacherContext { device: Device::Cpu, dtype: DType::F32, base_dir: fixtures() }).unwrap()
}

fn student_config() -> Box<dyn StudentConfig> {
    serde_json::from_value(json!({ "kind": "if-student" })).unwrap()
}

#[test]
fn fresh_student_equals_teacher_at_t_max() {
    let t = teacher();
    let schedule = t.native_schedule().unwrap();
    for w in [true, false] {
        let setup = StudentSetup { w_conditioned: w, t_max: 0.98, ..StudentSetup::default() };
        let built = build_student(student_config().as_ref(), t.as_ref(), schedule.as_ref(), &setup).unwrap();
        let params = t.as_any().downcast_ref::<IfTeacher>().unwrap().weights().len();
        assert_eq!(built.varmap.all_vars().len(), params + if w { 4 } else { 2 }, "teacher parameters + the new embeddings");
        let eps = boot_sdk::rng::normal(&[1, 2, 3], &t.sample_shape(), &Device::Cpu).unwrap();
        let cond = t.sample_cond(&[11, 12, 13]).unwrap();
        let ws = [1.0, 3.0, 7.0];
        let err = fresh_student_error(built.student.as_ref(), t.as_ref(), schedule.as_ref(), 0.98, &eps, &cond, w.then_some(&ws[..]), &[0.0, 0.3, 0.98]).unwrap();
        assert_eq!(err, 0.0, "w conditioned: {w}");
    }
}

#[test]
fn the_new_embeddings_train() {
    let t = teacher();
    let schedule = t.native_schedule().unwrap();
    let setup = StudentSetup { w_conditioned: true, ..StudentSetup::default() };
    let built = build_student(student_config().as_ref(), t.as_ref(), schedule.as_ref(), &setup).unwrap();
    let eps = boot_sdk::rng::normal(&[4, 5], &t.sample_shape(), &Device::Cpu).unwrap();
    let cond = t.sample_cond(&[4, 5]).unwrap();
    let y = built.student.forward(&eps, &Times::new(schedule.as_ref(), vec![0.2, 0.7]), &cond, Some(&[2.0, 7.0])).unwrap();
    let grads = y.sqr().unwrap().mean_all().unwrap().backward().unwrap();
    let data = built.varmap.data().lock().unwrap();
    for k in ["boot_time_embedding.weight", "boot_w_embedding.weight", "conv_in.weight", "encoder_hid_proj.weight", "add_embedding.proj.weight"] {
        let g = grads.get(data[k].as_tensor()).unwrap_or_else(|| panic!("no gradient for {k}"));
        assert!(g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0, "zero gradient for {k}");
    }
}

#[test]
fn snapshots_of_teacher_and_fresh_student() {
    let t = teacher();
    let schedule = t.native_schedule().unwrap();
    let eps = boot_sdk::rng::normal(&[21, 22], &t.sample_shape(), &Device::Cpu).unwrap();
    let cond = t.sample_cond(&[21, 22]).unwrap();
    let times = Times::new(schedule.as_ref(), vec![0.9, 0.3]);
    let threshold = Threshold::Dynamic { percentile: 0.95, max_value: Some(1.5) };
    let guided = Cfg { weight: CfgWeight::Fixed(7.0), threshold }.denoise(t.as_ref(), &eps, &times, &cond, None).unwrap();
    insta::assert_json_snapshot!("if_teacher_guided_thresholded", summary(&guided, 4).unwrap());
    let built = build_student(student_config().as_ref(), t.as_ref(), schedule.as_ref(), &StudentSetup { w_conditioned: true, ..StudentSetup::default() }).unwrap();
    let y = built.student.forward(&eps, &times, &cond, Some(&[7.0, 2.0])).unwrap();
    insta::assert_json_snapshot!("if_student_fresh", summary(&y, 4).unwrap());
}
