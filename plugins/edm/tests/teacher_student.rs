//! The teacher and student through the framework's contracts: config parsing, strict checkpoint loading
//! errors, the VP-time mapping, labels, and the BOOT student initialised from the teacher.
//!
//! Teachers are built on `BOOT_TEST_DEVICE` in `BOOT_TEST_DTYPE` (`common/device.rs`); students keep `f32`
//! variables there and compute in the dtype of their input, as a mixed-precision run does.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use boot_models::edm::NetworkSpec;
use boot_models::edm::is_buffer;
use boot_models::edm::{EdmDenoiser, PrecondConfig};
use boot_plugin_edm::{EdmStudentConfig, EdmTeacher};
use boot_sdk::candle::{DType, Device, Tensor};
use boot_kit::testing::{build_student as build_student_with, BuiltStudent, StudentSetup};
use boot_sdk::candle_nn::{VarBuilder, VarMap};
use boot_sdk::serde_json::{self, json};
use boot_sdk::{Cond, InputError, Student, StudentContext, Teacher, TeacherConfig, TeacherContext, Times};
use common::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("models").join("tests").join("fixtures").join("edm")
}

fn io(name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&fixtures().join(format!("{name}.io.safetensors")), &Device::Cpu).expect("io fixture")
}

fn ctx() -> TeacherContext {
    TeacherContext { device: test_device(), dtype: test_dtype(), base_dir: fixtures() }
}

fn teacher_config(name: &str, extra: serde_json::Value) -> Box<dyn TeacherConfig> {
    let mut v = json!({
        "kind": "edm",
        "checkpoint": format!("{name}.safetensors"),
        "network": format!("{name}.config.json"),
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    serde_json::from_value(v).expect("teacher config")
}

fn f64v(x: &Tensor) -> Vec<f64> {
    host_vec(x)
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (f64v(a), f64v(b));
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    num / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    f64v(a).iter().zip(f64v(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// VP times whose EDM sigma (`sigma_t / alpha_t`) is `s`.
/// A run schedule whose EDM sigma grows linearly to 80 at `t = 1` (the students here use `t_max = 1`).
#[derive(Debug)]
struct ToSigma80;

impl boot_sdk::NoiseSchedule for ToSigma80 {
    fn alpha(&self, t: f64) -> f64 {
        vp_times(&[80.0 * t]).alpha[0]
    }
    fn sigma(&self, t: f64) -> f64 {
        vp_times(&[80.0 * t]).sigma[0]
    }
}

fn vp_times(edm_sigma: &[f64]) -> Times {
    let alpha: Vec<f64> = edm_sigma.iter().map(|s| 1.0 / (1.0 + s * s).sqrt()).collect();
    let sigma: Vec<f64> = edm_sigma.iter().zip(&alpha).map(|(s, a)| s * a).collect();
    Times { t: vec![0.5; edm_sigma.len()], lambda: edm_sigma.iter().map(|s| s.ln()).collect(), alpha, sigma }
}

fn input_error(e: &boot_sdk::anyhow::Error) -> String {
    let ie = e.downcast_ref::<InputError>().unwrap_or_else(|| panic!("not an InputError: {e:#}"));
    let line = ie.to_string();
    assert!(!line.contains('\n'), "multi-line error: {line}");
    line
}

#[test]
fn teacher_maps_vp_time_to_edm_sigma() {
    let name = "edmprecond_songunet_ddpmpp";
    let teacher = teacher_config(name, json!({})).build(&ctx()).expect("build");
    assert_eq!(teacher.sample_shape(), [3, 16, 16]);
    assert_eq!(teacher.cond_spec().num_classes, None);
    if skip_without_conv("teacher_maps_vp_time_to_edm_sigma") {
        return;
    }
    let m = io(name);
    let sigma = f64v(&m["sigma"]);
    let times = vp_times(&sigma);
    let alpha = Tensor::from_vec(times.alpha.clone(), (4, 1, 1, 1), &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
    let x_t = dev(&m["x"].broadcast_mul(&alpha).unwrap());
    let x0 = teacher.denoise(&x_t, &times, &Cond::none()).unwrap();
    assert_eq!((x0.dtype(), x0.device().location()), (test_dtype(), test_device().location()));
    let rel = rel_err(&x0, &m["D_f32"]);
    println!("PARITY teacher(x_t = alpha x, VP time) vs D_f32 [{:?}]: rel_err = {rel:.3e}", test_dtype());
    assert!(rel <= tol(1e-4, BF16_REL_UNET));
}

#[test]
fn class_conditional_teacher_and_labels() {
    let name = "edmprecond_dhariwalunet_adm";
    let teacher = teacher_config(name, json!({ "labels": [3, 7] })).build(&ctx()).expect("build");
    assert_eq!(teacher.cond_spec().num_classes, Some(10));
    let seeds: Vec<u64> = (0..64).collect();
    let drawn = teacher.sample_cond(&seeds).unwrap().class.unwrap();
    assert!(drawn.iter().all(|c| matches!(c, Some(3) | Some(7))));
    assert!(drawn.contains(&Some(3)) && drawn.contains(&Some(7)));
    assert_eq!(drawn, teacher.sample_cond(&seeds).unwrap().class.unwrap(), "labels are a function of the seed");
    let uniform = teacher_config(name, json!({})).build(&ctx()).unwrap().sample_cond(&seeds).unwrap().class.unwrap();
    assert!(uniform.iter().all(|c| c.is_some_and(|c| c < 10)));
    let null = teacher_config(name, json!({ "labels": "null" })).build(&ctx()).unwrap().sample_cond(&seeds).unwrap().class.unwrap();
    assert!(null.iter().all(Option::is_none));

    if skip_without_conv("class_conditional_teacher_and_labels") {
        return;
    }
    let m = io(name);
    let sigma = f64v(&m["sigma"]);
    let times = vp_times(&sigma);
    let alpha = Tensor::from_vec(times.alpha.clone(), (4, 1, 1, 1), &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
    let x_t = dev(&m["x"].broadcast_mul(&alpha).unwrap());
    // Fixture labels: classes 3, 7, none (all-zero row), 0.
    let cond = Cond::classes(vec![Some(3), Some(7), None, Some(0)]);
    let rel = rel_err(&teacher.denoise(&x_t, &times, &cond).unwrap(), &m["D_f32"]);
    println!("PARITY class-conditional teacher vs D_f32 [{:?}]: rel_err = {rel:.3e}", test_dtype());
    let tol = tol(1e-4, BF16_REL_UNET);
    assert!(rel <= tol);
    let rel_none = rel_err(&teacher.denoise(&x_t, &times, &Cond::none()).unwrap(), &m["D_f32_class_labels_none"]);
    assert!(rel_none <= tol, "{rel_none:e}");
    let null = teacher.null_cond(&cond).unwrap();
    let rel_null = rel_err(&teacher.denoise(&x_t, &times, &null).unwrap(), &m["D_f32_class_labels_none"]);
    assert!(rel_null <= tol, "{rel_null:e}");
}

#[test]
fn config_errors_are_input_errors() {
    let e = teacher_config("edmprecond_songunet_ddpmpp", json!({ "precond": "vp" })).build(&ctx()).unwrap_err();
    assert!(input_error(&e).contains("teacher.precond"));
    let e = teacher_config("songunet_ddpmpp", json!({})).build(&ctx()).unwrap_err();
    assert!(input_error(&e).contains("bare SongUNet"));
    let e = teacher_config("edmprecond_dhariwalunet_adm", json!({ "labels": [3, 10] })).build(&ctx()).unwrap_err();
    assert!(input_error(&e).contains("out of range"));
    let e = teacher_config("edmprecond_songunet_ddpmpp", json!({ "labels": [1] })).build(&ctx()).unwrap_err();
    assert!(input_error(&e).contains("unconditional"));
    assert!(serde_json::from_value::<Box<dyn TeacherConfig>>(json!({"kind": "edm", "checkpoint": "x", "typo": 1})).is_err());
    // A bare net with an explicit preconditioning loads (its keys are unprefixed).
    let t = teacher_config("songunet_ddpmpp", json!({ "precond": "edm" })).build(&ctx()).expect("bare net + precond");
    assert_eq!(t.sample_shape(), [3, 16, 16]);
    let e = NetworkSpec::from_json_str(r#"{"class_name": "SongUNet", "constructor_kwargs": {"img_resolution": 16, "in_channels": 3, "out_channels": 3, "channel_mul": [1]}}"#, "net.json").unwrap_err();
    let line = input_error(&e);
    assert!(line.contains("channel_mul"), "{line}");
}

#[test]
fn strict_loading_names_the_tensor_and_shapes() {
    let name = "songunet_ddpmpp";
    let spec = NetworkSpec::from_json_file(&fixtures().join(format!("{name}.config.json"))).unwrap();
    let precond = PrecondConfig::default_for("edm");
    let base = boot_sdk::io::load_safetensors(&fixtures().join(format!("{name}.safetensors")), &Device::Cpu).unwrap();
    let dir = std::env::temp_dir().join(format!("boot-edm-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let try_load = |tensors: HashMap<String, Tensor>, file: &str| {
        let path = dir.join(file);
        boot_sdk::io::save_safetensors(&path, &tensors, None).unwrap();
        EdmDenoiser::load(&path, &spec, precond, test_dtype(), &test_device()).map(|_| ())
    };
    try_load(base.clone(), "ok.safetensors").expect("unmodified checkpoint loads");

    let mut missing = base.clone();
    missing.remove("dec.8x8_block1.qkv.weight");
    let line = input_error(&try_load(missing, "missing.safetensors").unwrap_err());
    println!("missing: {line}");
    assert!(line.contains("`dec.8x8_block1.qkv.weight`") && line.contains("missing") && line.contains("[96, 32, 1, 1]"), "{line}");

    let mut extra = base.clone();
    extra.insert("map_label.weight".into(), Tensor::zeros((16, 10), DType::F32, &Device::Cpu).unwrap());
    let line = input_error(&try_load(extra, "extra.safetensors").unwrap_err());
    println!("extra: {line}");
    assert!(line.contains("`map_label.weight`") && line.contains("unexpected") && line.contains("[16, 10]"), "{line}");

    let mut shaped = base.clone();
    shaped.insert("enc.16x16_conv.weight".into(), Tensor::zeros((16, 3, 1, 1), DType::F32, &Device::Cpu).unwrap());
    let line = input_error(&try_load(shaped, "shape.safetensors").unwrap_err());
    println!("mis-shaped: {line}");
    assert!(line.contains("`enc.16x16_conv.weight`") && line.contains("expected shape [16, 3, 3, 3], found [16, 3, 1, 1]"), "{line}");

    let e = EdmDenoiser::load(&dir.join("absent.safetensors"), &spec, precond, test_dtype(), &test_device()).unwrap_err();
    input_error(&e);
    let _ = std::fs::remove_dir_all(&dir);
}

struct Built {
    teacher: Arc<dyn Teacher>,
    student: Box<dyn Student>,
    varmap: VarMap,
}

fn build_student(name: &str, w_conditioned: bool, prefix: Option<&str>) -> Built {
    let cfg = teacher_config(name, json!({}));
    let teacher = cfg.build(&ctx()).expect("teacher");
    let scfg: Box<dyn boot_sdk::StudentConfig> = serde_json::from_value(json!({ "kind": "edm-student" })).expect("student config");
    let setup = StudentSetup { w_conditioned, t_max: 1.0, prefix: prefix.map(str::to_string), device: test_device(), base_dir: fixtures(), ..StudentSetup::default() };
    let BuiltStudent { student, varmap } = build_student_with(scfg.as_ref(), teacher.as_ref(), &ToSigma80, &setup).expect("student");
    Built { teacher, student, varmap }
}

/// Standard normal `[n, 3, 16, 16]` on the test device in the test dtype.
fn eps(n: usize) -> Tensor {
    dev(&boot_sdk::rng::normal(&(0..n as u64).collect::<Vec<_>>(), &[3, 16, 16], &Device::Cpu).unwrap())
}

#[test]
fn fresh_student_equals_teacher_at_t_max() {
    if skip_without_conv("fresh_student_equals_teacher_at_t_max") {
        return;
    }
    for (name, w) in [("edmprecond_songunet_ddpmpp", false), ("edmprecond_dhariwalunet_adm", true)] {
        let b = build_student(name, w, Some("student"));
        let edm = b.teacher.as_any().downcast_ref::<EdmTeacher>().unwrap();
        let params = edm.weights().keys().filter(|k| !is_buffer(k)).count();
        let vars = b.varmap.data().lock().unwrap().len();
        assert_eq!(vars, params + if w { 4 } else { 2 }, "{name}: teacher parameters + new embeddings, no buffers");
        assert!(b.varmap.data().lock().unwrap().keys().all(|k| k.starts_with("student.") && !is_buffer(k)));

        let n = 4;
        let e = eps(n);
        let cond = if w { Cond::classes(vec![Some(1), None, Some(9), Some(4)]) } else { Cond::none() };
        let ws = [1.0, 2.5, 4.0, 5.0];
        let t_max = vp_times(&[80.0; 4]);
        let reference = b.teacher.denoise(&e, &t_max, &cond).unwrap();
        for target in [vp_times(&[0.002, 0.5, 10.0, 80.0]), vp_times(&[1e-9, 3.0, 3.0, 0.1])] {
            let y = b.student.forward(&e, &target, &cond, w.then_some(&ws[..])).unwrap();
            let d = max_abs(&y, &reference);
            println!("fresh student vs teacher at t_max ({name}) [{:?}]: max_abs = {d:.3e}", test_dtype());
            // Also in bf16: the student computes the teacher's operations on the same (bf16-rounded) weights.
            assert!(d <= 1e-6, "{name}: {d:e}");
        }
    }
}

#[test]
fn student_trains_new_embeddings() {
    if skip_without_conv("student_trains_new_embeddings") {
        return;
    }
    let b = build_student("edmprecond_dhariwalunet_adm", true, None);
    let e = eps(2);
    let cond = Cond::classes(vec![Some(2), None]);
    let y = b.student.forward(&e, &vp_times(&[0.3, 5.0]), &cond, Some(&[1.5, 3.0])).unwrap();
    let loss = y.sqr().unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    let data = b.varmap.data().lock().unwrap();
    for k in ["boot_map_time.weight", "boot_map_w.weight", "enc.16x16_conv.weight", "dec.16x16_up.conv0.weight", "dec.8x8_in0.qkv.weight"] {
        let var = data.get(k).unwrap_or_else(|| panic!("variable {k}"));
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {k}"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0, "zero gradient for {k}");
    }
    // The teacher's weights were copied, not left at their init.
    let edm = b.teacher.as_any().downcast_ref::<EdmTeacher>().unwrap();
    let w = &edm.weights()["enc.16x16_conv.weight"];
    assert_eq!(max_abs(data["enc.16x16_conv.weight"].as_tensor(), w), 0.0);
}

#[test]
fn student_config_errors() {
    let e = serde_json::from_value::<EdmStudentConfig>(json!({ "sigma": 1 })).unwrap_err();
    assert!(e.to_string().contains("sigma"));

    let other = boot_kit::testing::ForeignTeacher([3, 16, 16]);
    let varmap = VarMap::new();
    let sctx = StudentContext {
        vb: VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        varmap: &varmap,
        teacher: &other,
        schedule: &ToSigma80,
        w_conditioned: false,
        t_min: 0.0,
        t_max: 1.0,
        device: Device::Cpu,
        base_dir: fixtures(),
    };
    let e = EdmStudentConfig::default().build_student(&sctx).err().expect("needs an edm teacher");
    assert!(input_error(&e).contains("needs an \"edm\" teacher"));
}
