//! Gradient accumulation (`train.micro_batch`): a step run as micro-batches equals the step run at once —
//! the same logged losses, gradient norm and final (live and EMA) weights, up to rounding — including an
//! uneven split, the boundary loss, the inverse-step weighting and gradient clipping. Out-of-range values are
//! refused as config errors naming `train.micro_batch`.

mod common;

use std::path::Path;
use std::sync::Arc;

use boot_core::components::{Components, RunContext};
use boot_core::config::RunConfig;
use boot_core::train::{train, Start};
use boot_sdk::candle::Tensor;
use boot_sdk::candle_nn::{Init, VarMap};
use boot_sdk::{Cond, InputError, Student, StudentConfig, StudentContext, Teacher, TeacherConfig, TeacherContext, Times};
use common::GaussianTeacher;
use serde::Deserialize;
use serde_json::{json, Value};

/// `[teacher] kind = "test-mb-gaussian"`: the exact Gaussian teacher.
#[derive(Debug, Deserialize)]
struct GaussianConfig {}

boot_sdk::register! {
    teacher "test-mb-gaussian" => "the exact Gaussian teacher";
    impl TeacherConfig for GaussianConfig {
        fn build(&self, _ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            Ok(Arc::new(GaussianTeacher::new([2, 3, 3], 0.5)))
        }
    }
}

/// `[student] kind = "test-mb-affine"`: `y = a eps + b + t c`, `a` a scalar, `b` and `c` images.
#[derive(Debug, Deserialize)]
struct AffineConfig {}

boot_sdk::register! {
    student "test-mb-affine" => "y = a eps + b + t c";
    impl StudentConfig for AffineConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            let shape = ctx.teacher.sample_shape().to_vec();
            let a = ctx.vb.get_with_hints(1, "a", Init::Const(0.5))?;
            let b = ctx.vb.get_with_hints(shape.clone(), "b", Init::Const(0.1))?;
            let c = ctx.vb.get_with_hints(shape, "c", Init::Const(-0.2))?;
            Ok(Box::new(Affine { a, b, c }))
        }
    }
}

struct Affine {
    a: Tensor,
    b: Tensor,
    c: Tensor,
}

impl Student for Affine {
    fn forward(&self, eps: &Tensor, t: &Times, _c: &Cond, _w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        let tt = Tensor::from_vec(t.t.iter().map(|&x| x as f32).collect::<Vec<_>>(), (t.len(), 1, 1, 1), eps.device())?;
        Ok(eps.broadcast_mul(&self.a)?.broadcast_add(&self.b)?.broadcast_add(&tt.broadcast_mul(&self.c)?)?)
    }
}

fn config(out: &Path, micro_batch: Option<usize>, weighting: &str, grad_clip: f64) -> RunConfig {
    let mut train = json!({
        "steps": 3, "batch_size": 8, "lr": 5e-2, "ema_decay": 0.5, "boundary_every": 2, "boundary_weight": 0.7,
        "loss_weighting": weighting, "grad_clip": grad_clip, "checkpoint_every": 0, "keep_checkpoints": 1,
        "log_every": 1, "grid_every": 0, "grid_samples": 1, "progress": false,
    });
    if let Some(m) = micro_batch {
        train["micro_batch"] = json!(m);
    }
    serde_json::from_value(json!({
        "run": { "out_dir": out, "seed": 11 },
        "teacher": { "kind": "test-mb-gaussian" },
        "student": { "kind": "test-mb-affine" },
        "schedule": { "kind": "cosine" },
        "train": train,
        "eval": { "after_training": false },
    }))
    .expect("test config")
}

fn build(cfg: &RunConfig) -> Components {
    Components::build(cfg, &RunContext { config_name: "test".into(), base_dir: ".".into() }).expect("components")
}

fn log(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Max abs difference of every variable of `a` and `b`, relative to the larger of 1 and the values' scale.
fn weights_diff(a: &VarMap, b: &VarMap) -> f64 {
    let (a, b) = (a.data().lock().unwrap(), b.data().lock().unwrap());
    assert_eq!(a.len(), b.len());
    let mut worst = 0f64;
    for (name, va) in a.iter() {
        let vb = &b[name];
        let scale = va.as_tensor().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap() as f64;
        worst = worst.max(common::max_abs(va.as_tensor(), vb.as_tensor()) / scale.max(1.0));
    }
    worst
}

fn close(a: &Value, b: &Value, what: &str) {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{what}: {x} vs {y}"),
        _ => assert_eq!(a, b, "{what}"),
    }
}

/// Trains with the whole batch at once and with `micro` and compares logs and weights.
fn compare(micro: usize, weighting: &str, grad_clip: f64) {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (o1, o2) = (d1.path().join("out"), d2.path().join("out"));
    let (whole, split) = (config(&o1, Some(8), weighting, grad_clip), config(&o2, Some(micro), weighting, grad_clip));
    let (c1, c2) = (build(&whole), build(&split));
    let (s1, s2) = (train(&whole, &c1, Start::Fresh).unwrap(), train(&split, &c2, Start::Fresh).unwrap());
    assert_eq!(s1.losses.len(), 3);
    for (x, y) in s1.losses.iter().zip(&s2.losses) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "losses {x} vs {y}");
    }
    let (l1, l2) = (log(&o1), log(&o2));
    assert_eq!(l1.len(), 3, "one metrics row per step");
    assert_eq!(l2.len(), 3, "one metrics row per step, however many micro-batches");
    for (a, b) in l1.iter().zip(&l2) {
        assert_eq!(a["step"], b["step"]);
        for key in ["loss", "loss_bootstrap", "loss_boundary", "t_mean", "grad_norm"] {
            close(&a[key], &b[key], &format!("step {} {key}", a["step"]));
        }
    }
    // The boundary loss keeps its cadence (steps 0 and 2, logged as 1 and 3).
    let has_boundary: Vec<bool> = l2.iter().map(|l| !l["loss_boundary"].is_null()).collect();
    assert_eq!(has_boundary, [true, false, true]);
    // Training moved the weights, and both runs moved them alike.
    let fresh = build(&whole);
    assert!(weights_diff(&fresh.student.vars, &c1.student.vars) > 1e-3, "training did not change the weights");
    let (live, ema) = (weights_diff(&c1.student.vars, &c2.student.vars), weights_diff(&c1.ema.vars, &c2.ema.vars));
    assert!(live <= 1e-5 && ema <= 1e-5, "weights differ: live {live}, ema {ema}");
}

#[test]
fn an_uneven_micro_batch_split_equals_the_whole_batch() {
    compare(3, "uniform", 0.0);
}

#[test]
fn micro_batches_with_inverse_step_weighting_and_clipping_equal_the_whole_batch() {
    // A clip well below the gradient norm, so that clipping acts on the summed gradient.
    compare(3, "inverse-step", 0.05);
    compare(1, "uniform", 0.05);
}

#[test]
fn unset_micro_batch_is_the_whole_batch_bit_for_bit() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (config(&d1.path().join("out"), None, "uniform", 0.0), config(&d2.path().join("out"), Some(8), "uniform", 0.0));
    let (ca, cb) = (build(&a), build(&b));
    assert_eq!(train(&a, &ca, Start::Fresh).unwrap().losses, train(&b, &cb, Start::Fresh).unwrap().losses);
    assert_eq!(weights_diff(&ca.student.vars, &cb.student.vars), 0.0);
}

#[test]
fn micro_batch_out_of_range_is_a_config_error() {
    for bad in [0, 9] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cfg = config(&out, Some(bad), "uniform", 0.0);
        let err = train(&cfg, &build(&cfg), Start::Fresh).expect_err("micro_batch out of range");
        let input = err.chain().find_map(|e| e.downcast_ref::<InputError>()).unwrap_or_else(|| panic!("not an input error: {err:#}"));
        assert_eq!(input.key, "train.micro_batch", "{input}");
        assert!(input.to_string().contains("train.micro_batch"), "{input}");
        assert!(!out.exists(), "a refused run wrote {}", out.display());
    }
}
