//! The BOOT student built from the ADM teacher: a fresh student equals the teacher's denoiser at `t_max`
//! for every target time and guidance weight, the teacher's weights are copied, the new embeddings start
//! at zero and train.
//!
//! On `BOOT_TEST_DEVICE` (`common/device.rs`): the teacher in `BOOT_TEST_DTYPE`, the student's variables in
//! f32, its input (and so its computation) in `BOOT_TEST_DTYPE`, as a mixed-precision run's.

mod common;

use boot_plugin_imagenet::{AdmStudentConfig, AdmTeacher};
use boot_sdk::candle::{DType, Device};
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_sdk::BetaSchedule;
use boot_sdk::serde_json::{self, json};
use boot_sdk::{Cond, StudentContext, Teacher, Times};
use common::*;

#[test]
fn fresh_student_equals_teacher_at_t_max() {
    if skip_without_conv("fresh_student_equals_teacher_at_t_max") {
        return;
    }
    let s = BetaSchedule::cosine(1000).unwrap();
    for (w_conditioned, t_max) in [(false, 0.99), (true, 0.99), (true, 0.9)] {
        let b = build_student(json!({ "null_class": "zero" }), json!({}), w_conditioned, t_max, Some("student"));
        let teacher = b.teacher.as_any().downcast_ref::<AdmTeacher>().unwrap();
        let vars = b.varmap.data().lock().unwrap().len();
        assert_eq!(vars, teacher.weights().len() + if w_conditioned { 4 } else { 2 }, "teacher parameters + the new embeddings");
        assert!(b.varmap.data().lock().unwrap().keys().all(|k| k.starts_with("student.")));

        let e = dev(&noise(10, 4));
        let cond = Cond::classes(vec![Some(1), None, Some(9), Some(4)]);
        let reference = b.teacher.denoise(&e, &times(&s, &[t_max; 4]), &cond).unwrap();
        let ws = [1.0, 2.5, 4.0, 5.0];
        for target in [[0.0, 0.3, 0.6, t_max], [0.05, 0.05, 0.5, 0.2]] {
            let y = b.student.forward(&e, &times(&s, &target), &cond, w_conditioned.then_some(&ws[..])).unwrap();
            let d = max_abs(&y, &reference);
            println!("fresh student vs teacher at t_max = {t_max} (w: {w_conditioned}): max_abs = {d:.3e}");
            assert_eq!(d, 0.0);
        }
    }
}

#[test]
fn teacher_timestep_override() {
    if skip_without_conv("teacher_timestep_override") {
        return;
    }
    let b = build_student(json!({}), json!({ "teacher_timestep": 500.0 }), false, 0.99, None);
    let s = BetaSchedule::cosine(1000).unwrap();
    let at_500 = Times { t: vec![0.5; 2], alpha: vec![s.alpha_sigma_at(500.0).0; 2], sigma: vec![s.alpha_sigma_at(500.0).1; 2], lambda: vec![s.lambda_at(500.0); 2] };
    let e = dev(&noise(0, 2));
    let cond = Cond::classes(vec![Some(0), Some(3)]);
    let y = b.student.forward(&e, &times(&s, &[0.1, 0.7]), &cond, None).unwrap();
    assert_eq!(max_abs(&y, &b.teacher.denoise(&e, &at_500, &cond).unwrap()), 0.0);
}

#[test]
fn student_trains_the_new_embeddings_and_the_copied_weights() {
    if skip_without_conv("student_trains_the_new_embeddings_and_the_copied_weights") {
        return;
    }
    let b = build_student(json!({ "null_class": "zero" }), json!({}), true, 0.99, None);
    let s = BetaSchedule::cosine(1000).unwrap();
    let e = dev(&noise(5, 2));
    let y = b.student.forward(&e, &times(&s, &[0.3, 0.8]), &Cond::classes(vec![Some(2), None]), Some(&[1.5, 3.0])).unwrap();
    let grads = y.sqr().unwrap().mean_all().unwrap().backward().unwrap();
    let data = b.varmap.data().lock().unwrap();
    for k in ["boot_time_embed.weight", "boot_w_embed.weight", "boot_time_embed.bias", "input_blocks.0.0.weight", "middle_block.1.qkv.weight", "label_emb.weight", "out.2.weight"] {
        let var = data.get(k).unwrap_or_else(|| panic!("variable {k}"));
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {k}"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0, "zero gradient for {k}");
    }
    for k in ["boot_time_embed.weight", "boot_w_embed.bias"] {
        assert_eq!(data[k].as_tensor().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0, "{k} starts at zero");
    }
    let teacher = b.teacher.as_any().downcast_ref::<AdmTeacher>().unwrap();
    for (k, w) in teacher.weights() {
        assert_eq!(max_abs(data[k].as_tensor(), w), 0.0, "{k} is the teacher's");
    }
}

#[test]
fn student_errors() {
    assert!(serde_json::from_value::<AdmStudentConfig>(json!({ "sigma_max": 1 })).is_err());
    let b = build_student(json!({}), json!({}), true, 0.99, None);
    let s = BetaSchedule::cosine(1000).unwrap();
    let e = dev(&noise(0, 1));
    assert!(b.student.forward(&e, &times(&s, &[0.5]), &Cond::classes(vec![Some(1)]), None).is_err(), "a w-conditioned student needs w");

    let cfg = teacher_config(json!({}));
    let teacher = cfg.build(&ctx()).unwrap();
    let varmap = VarMap::new();
    let schedule = teacher.native_schedule().unwrap();
    fn sctx<'a>(varmap: &'a VarMap, teacher: &'a dyn Teacher, schedule: &'a dyn boot_sdk::NoiseSchedule) -> StudentContext<'a> {
        StudentContext {
            vb: VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu),
            varmap,
            teacher,
            schedule,
            w_conditioned: false,
            t_min: 0.0,
            t_max: 0.99,
            device: Device::Cpu,
            base_dir: adm_fixtures(),
        }
    }
    let e = AdmStudentConfig { teacher_timestep: Some(1000.0) }.build_student(&sctx(&varmap, teacher.as_ref(), schedule.as_ref())).err().expect("out of range");
    assert!(input_error(&e).contains("student.teacher_timestep"));

    let other = boot_kit::testing::ForeignTeacher([3, 16, 16]);
    let e = AdmStudentConfig::default().build_student(&sctx(&varmap, &other, schedule.as_ref())).err().expect("needs an adm teacher");
    assert!(input_error(&e).contains("needs an \"adm\" teacher"));
}

#[test]
fn teacher_time_follows_the_run_schedule() {
    if skip_without_conv("teacher_time_follows_the_run_schedule") {
        return;
    }
    // The run names another schedule than the teacher's own (cosine): the student's fixed teacher time is
    // the teacher's timestep of the RUN schedule's lambda(t_max), so a fresh student still equals the
    // teacher at the run's t_max.
    use boot_kit::testing::{build_student, fresh_student_error, StudentSetup};
    let teacher = teacher(json!({ "null_class": "zero" }));
    let run = BetaSchedule::linear(1000, 1e-4, 0.02).unwrap();
    let cfg: Box<dyn boot_sdk::StudentConfig> = serde_json::from_value(json!({ "kind": "adm-student" })).unwrap();
    let setup = StudentSetup { t_max: 0.9, device: test_device(), base_dir: adm_fixtures(), ..StudentSetup::default() };
    let built = build_student(cfg.as_ref(), teacher.as_ref(), &run, &setup).unwrap();
    let e = dev(&noise(3, 2));
    let cond = Cond::classes(vec![Some(2), None]);
    let err = fresh_student_error(built.student.as_ref(), teacher.as_ref(), &run, 0.9, &e, &cond, None, &[0.0, 0.4, 0.9]).unwrap();
    assert_eq!(err, 0.0, "fresh student vs teacher at the run's t_max");
    let native = teacher.native_schedule().unwrap();
    let native_err = fresh_student_error(built.student.as_ref(), teacher.as_ref(), native.as_ref(), 0.9, &e, &cond, None, &[0.5]).unwrap();
    assert!(native_err > 1e-3, "the native schedule's t_max is another noise level ({native_err:e})");
}
