//! The diffusers teacher against diffusers itself (fixtures: `scripts/fixtures/make_pipeline_fixtures.py`):
//! signal predictions for epsilon / v_prediction / sample pipelines (f32, f16 and bf16 weights, learned
//! variance, class labels), and boot's DDIM against `DDIMScheduler` from the same noise.
//!
//! The DDIM mapping: diffusers' integer timestep `tau` is boot's time `t = tau / (N - 1)` on the teacher's
//! native schedule (the run's default), where the teacher's `lambda` is timestep `tau`'s exactly. diffusers'
//! `DDIMScheduler` with N inference steps, `timestep_spacing = "trailing"`, `set_alpha_to_one = True` and
//! eta 0 evaluates at `tau_k = round(1000 - k 1000 / N) - 1` and returns the last clean prediction; boot's
//! DDIM on the grid `tau_k / (N - 1)` (`TeacherSampling::ddim_on`) is the same map. boot's `ddim-N` sampler
//! uses the even grid `t_max -> t_min` instead (fractional timesteps).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use boot_core::guidance::NoGuidance;
use boot_core::samplers::TeacherSampling;
use boot_kit::testing::{input_error_line, rel_err};
use boot_plugin_diffusers::DiffusersTeacherConfig;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::serde_json::{self, json, Value};
use boot_sdk::{Cond, Teacher, TeacherConfig, TeacherContext, Times};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

fn ctx(base_dir: &Path) -> TeacherContext {
    TeacherContext { device: Device::Cpu, dtype: DType::F32, base_dir: base_dir.to_path_buf() }
}

fn config(extra: Value) -> Box<dyn TeacherConfig> {
    let mut v = json!({ "kind": "diffusers" });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    serde_json::from_value(v).expect("teacher config")
}

fn teacher(name: &str) -> std::sync::Arc<dyn Teacher> {
    config(json!({ "path": name })).build(&ctx(&fixtures())).expect("teacher")
}

fn io(name: &str) -> HashMap<String, Tensor> {
    boot_sdk::io::load_safetensors(&fixtures().join(format!("{name}.io.safetensors")), &Device::Cpu).expect("io fixture")
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.to_vec1::<i64>().expect("int64 timesteps")
}

fn cond_of(m: &HashMap<String, Tensor>) -> Cond {
    match m.get("labels") {
        Some(l) => Cond::classes(ints(l).into_iter().map(|c| Some(c as u32)).collect()),
        None => Cond::none(),
    }
}

const PIPELINES: [&str; 4] = ["eps_linear", "eps_bf16", "v_cosine", "sample_scaled"];

#[test]
fn signal_predictions_match_diffusers() {
    for name in PIPELINES {
        let t = teacher(name);
        let m = io(name);
        let schedule = t.native_schedule().expect("native schedule");
        let n = m["x"].dim(0).unwrap();
        for (i, tau) in ints(&m["timesteps"]).into_iter().enumerate() {
            let times = Times::constant(schedule.as_ref(), tau as f64 / 999.0, n);
            let x0 = t.denoise(&m["x"], &times, &cond_of(&m)).unwrap();
            let err = rel_err(&x0, &m[&format!("x0_{i}")]).unwrap();
            println!("{name} timestep {tau}: rel err {err:.2e}");
            assert!(err <= 1e-4, "{name} at timestep {tau}: {err:e}");
        }
    }
}

#[test]
fn ddim_matches_diffusers_ddim_scheduler() {
    for name in PIPELINES {
        let t = teacher(name);
        let m = io(name);
        let schedule = t.native_schedule().expect("native schedule");
        let grid: Vec<f64> = ints(&m["ddim10_timesteps"]).into_iter().map(|tau| tau as f64 / 999.0).collect();
        let cond = cond_of(&m);
        let guidance = NoGuidance { threshold: Default::default() };
        let sampling = TeacherSampling { teacher: t.as_ref(), guidance: &guidance, schedule: schedule.as_ref(), cond: &cond, w: None, t_max: grid[0], t_min: 0.0 };
        let x = sampling.ddim_on(&m["noise"], &grid).unwrap();
        let err = rel_err(&x, &m["ddim10"]).unwrap();
        println!("{name} DDIM-10 (trailing): rel err {err:.2e}");
        assert!(err <= 1e-4, "{name}: {err:e}");
    }
}

/// A copy of pipeline `name` in a temporary folder, changed by `edit(folder)`.
fn broken(name: &str, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["unet", "scheduler"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for f in std::fs::read_dir(fixtures().join(name).join(sub)).unwrap().flatten() {
            std::fs::copy(f.path(), dir.path().join(sub).join(f.file_name())).unwrap();
        }
    }
    edit(dir.path());
    dir
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn error_of(dir: &Path) -> String {
    let e = config(json!({ "path": "." })).build(&ctx(dir)).err().expect("must fail");
    input_error_line(&e)
}

#[test]
fn a_broken_folder_is_one_line_naming_file_and_key() {
    let d = broken("eps_linear", |p| edit_json(&p.join("scheduler/scheduler_config.json"), |o| {
        o.insert("prediction_type".into(), json!("noise"));
    }));
    let line = error_of(d.path());
    assert!(line.contains("scheduler_config.json") && line.contains("prediction_type") && line.contains("noise"), "{line}");

    let d = broken("eps_linear", |p| edit_json(&p.join("unet/config.json"), |o| {
        o.remove("sample_size");
    }));
    let line = error_of(d.path());
    assert!(line.contains("config.json") && line.contains("sample_size"), "{line}");

    let d = broken("eps_linear", |p| edit_json(&p.join("unet/config.json"), |o| {
        o.insert("block_out_channels".into(), json!([16, 24]));
    }));
    let line = error_of(d.path());
    assert!(line.contains("diffusion_pytorch_model.safetensors") && line.contains("shape"), "{line}");

    let d = broken("eps_linear", |p| edit_json(&p.join("scheduler/scheduler_config.json"), |o| {
        o.insert("beta_schedule".into(), json!("sigmoid"));
    }));
    let line = error_of(d.path());
    assert!(line.contains("scheduler_config.json") && line.contains("beta_schedule"), "{line}");

    let d = broken("eps_linear", |p| std::fs::remove_file(p.join("unet/diffusion_pytorch_model.safetensors")).unwrap());
    assert!(error_of(d.path()).contains("diffusion_pytorch_model.safetensors"));

    let line = input_error_line(&config(json!({ "path": "nowhere" })).build(&ctx(&fixtures())).err().unwrap());
    assert!(line.contains("teacher.path"), "{line}");
    assert!(serde_json::from_value::<DiffusersTeacherConfig>(json!({ "path": "x", "typo": 1 })).is_err());
}
