//! A non-finite loss skips the step's update and is counted in metrics.jsonl; the run goes on. Several in a
//! row stop it with an error that says so, and the last good checkpoint stays as it was. A resumed run
//! continues the count and repeats a straight run's losses.
//!
//! The teacher is the exact Gaussian one, poisoned (NaN predictions) at chosen steps: its `sample_cond`
//! recognises a step by the seeds the loop draws for it (a pure function of run seed, step and index).

mod common;

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use boot_core::checkpoint::{self, Checkpoint};
use boot_core::components::{Components, RunContext};
use boot_core::config::RunConfig;
use boot_core::train::{train, Start};
use boot_sdk::candle::{Device, Tensor};
use boot_sdk::candle_nn::{Init, VarMap};
use boot_sdk::rng::{sample_seeds, Stream};
use boot_sdk::{Cond, Student, StudentConfig, StudentContext, Teacher, TeacherConfig, TeacherContext, Times};
use common::GaussianTeacher;
use serde::Deserialize;
use serde_json::{json, Value};

const SEED: u64 = 7;
const BATCH: usize = 4;

/// `[teacher] kind = "test-poisoned-gaussian"`: NaN predictions at the given (0-based) steps.
#[derive(Debug, Deserialize)]
struct PoisonedConfig {
    nan_steps: Vec<u64>,
}

boot_sdk::register! {
    teacher "test-poisoned-gaussian" => "the exact Gaussian teacher, NaN at chosen steps";
    impl TeacherConfig for PoisonedConfig {
        fn build(&self, _ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            let marks = self.nan_steps.iter().map(|&s| sample_seeds(SEED, Stream::Cond, s, 0, BATCH)[0]).collect();
            Ok(Arc::new(Poisoned { inner: GaussianTeacher::new([1, 4, 4], 0.5), marks }))
        }
    }
}

#[derive(Debug)]
struct Poisoned {
    inner: GaussianTeacher,
    /// The first conditioning seed of each poisoned step.
    marks: Vec<u64>,
}

impl Teacher for Poisoned {
    fn sample_shape(&self) -> [usize; 3] {
        self.inner.sample_shape()
    }
    /// Label 1 on every sample of a poisoned step, else 0.
    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        let poisoned = seeds.first().is_some_and(|s| self.marks.contains(s));
        Ok(Cond { class: Some(vec![Some(u32::from(poisoned)); seeds.len()]), ..Cond::default() })
    }
    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        let x0 = self.inner.denoise(x_t, times, cond)?;
        match cond.class.as_ref().and_then(|c| c.first().copied().flatten()) {
            Some(1) => Ok((x0 * f64::NAN)?),
            _ => Ok(x0),
        }
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `[student] kind = "test-affine"`: `y = a eps + b`.
#[derive(Debug, Deserialize)]
struct AffineConfig {}

boot_sdk::register! {
    student "test-affine" => "y = a eps + b";
    impl StudentConfig for AffineConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            let a = ctx.vb.get_with_hints(1, "a", Init::Const(0.5))?;
            let b = ctx.vb.get_with_hints(ctx.teacher.sample_shape().to_vec(), "b", Init::Const(0.0))?;
            Ok(Box::new(Affine { a, b }))
        }
    }
}

struct Affine {
    a: Tensor,
    b: Tensor,
}

impl Student for Affine {
    fn forward(&self, eps: &Tensor, _t: &Times, _c: &Cond, _w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        Ok(eps.broadcast_mul(&self.a)?.broadcast_add(&self.b)?)
    }
}

fn config(out: &Path, steps: u64, nan_steps: &[u64], max_in_a_row: u64) -> RunConfig {
    serde_json::from_value(json!({
        "run": { "out_dir": out, "seed": SEED },
        "teacher": { "kind": "test-poisoned-gaussian", "nan_steps": nan_steps },
        "student": { "kind": "test-affine" },
        "schedule": { "kind": "cosine" },
        "train": {
            "steps": steps, "batch_size": BATCH, "lr": 1e-2, "ema_decay": 0.5, "checkpoint_every": 1,
            "keep_checkpoints": 100, "log_every": 1, "grid_every": 0, "grid_samples": 1, "progress": false,
            "max_nonfinite_in_a_row": max_in_a_row,
        },
    }))
    .expect("test config")
}

fn build(cfg: &RunConfig) -> Components {
    Components::build(cfg, &RunContext { config_name: "test".into(), base_dir: ".".into() }).expect("components")
}

fn log(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Steps that have a checkpoint.
fn checkpointed(out: &Path) -> Vec<u64> {
    checkpoint::list(out).into_iter().map(|(s, _)| s).collect()
}

/// The student's weights in the checkpoint of `step` equal those in `vars`.
fn assert_checkpoint_holds(out: &Path, step: u64, cfg: &RunConfig, vars: &VarMap) {
    let fresh = build(cfg);
    let path = checkpoint::list(out).into_iter().find(|(s, _)| *s == step).expect("checkpoint").1;
    Checkpoint::read(&path, &Device::Cpu).unwrap().restore_vars("student", &fresh.student.vars).unwrap();
    let (got, want) = (fresh.student.vars.data().lock().unwrap(), vars.data().lock().unwrap());
    for (name, v) in want.iter() {
        assert_eq!(common::max_abs(got[name].as_tensor(), v.as_tensor()), 0.0, "{name} differs from the checkpoint of step {step}");
    }
}

#[test]
fn a_nonfinite_step_is_skipped_counted_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Steps 4 and 5 (1-based) have NaN targets; step 6 is finite again.
    let cfg = config(&out, 6, &[3, 4], 5);
    let c = build(&cfg);
    let summary = train(&cfg, &c, Start::Fresh).expect("two NaN steps in a row are below the limit of 5");
    assert_eq!(summary.losses.len(), 6);
    let lines = log(&out);
    assert_eq!(lines.iter().map(|l| l["step"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let counts: Vec<u64> = lines.iter().map(|l| l["skipped_nonfinite"].as_u64().unwrap()).collect();
    assert_eq!(counts, [0, 0, 0, 1, 2, 2]);
    for l in &lines {
        let skipped = l["skipped"].as_bool().unwrap_or(false);
        assert_eq!(skipped, [4, 5].contains(&l["step"].as_u64().unwrap()), "{l}");
        assert_eq!(l["loss"].is_null(), skipped, "{l}");
    }
    // No checkpoint after a skipped step; the last one holds the live weights.
    assert_eq!(checkpointed(&out), [1, 2, 3, 6]);
    assert_checkpoint_holds(&out, 6, &cfg, &c.student.vars);
}

#[test]
fn several_nonfinite_steps_in_a_row_stop_the_run_and_keep_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = config(&out, 10, &[2, 3, 4, 5, 6, 7, 8, 9], 3);
    let c = build(&cfg);
    let err = train(&cfg, &c, Start::Fresh).expect_err("3 NaN steps in a row stop the run");
    let msg = format!("{err:#}");
    assert!(msg.contains("3 steps in a row") && msg.contains("max_nonfinite_in_a_row") && msg.contains("step-00000002"), "{msg}");
    assert_eq!(checkpointed(&out), [1, 2]);
    // The skipped steps changed nothing: the live weights are the checkpoint's.
    assert_checkpoint_holds(&out, 2, &cfg, &c.student.vars);
    let counts: Vec<u64> = log(&out).iter().map(|l| l["skipped_nonfinite"].as_u64().unwrap()).collect();
    assert_eq!(counts, [0, 0, 1, 2, 3]);
}

#[test]
fn a_resumed_run_keeps_the_count_and_the_losses_of_a_straight_one() {
    let (straight, stopped) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let nan = [1];
    let cfg = config(&straight.path().join("out"), 6, &nan, 5);
    train(&cfg, &build(&cfg), Start::Fresh).unwrap();
    let first = config(&stopped.path().join("out"), 4, &nan, 5);
    train(&first, &build(&first), Start::Fresh).unwrap();
    let rest = config(&stopped.path().join("out"), 6, &nan, 5);
    train(&rest, &build(&rest), Start::Resume).unwrap();
    let (a, b) = (log(&straight.path().join("out")), log(&stopped.path().join("out")));
    assert_eq!(a.len(), 6);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x["step"], &x["loss"], &x["skipped_nonfinite"]), (&y["step"], &y["loss"], &y["skipped_nonfinite"]));
    }
    assert_eq!(b[5]["skipped_nonfinite"], 1);
}
