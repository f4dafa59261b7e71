//! `examples/diffusers-tiny.toml` through the built `boot-host`: a diffusers pipeline folder (the tiny
//! random-weight parity fixture) is distilled end to end on a CPU, and a grid and eval.json come out.

mod common;

use std::path::PathBuf;

use common::{eval_json, logged_losses, run};

#[test]
fn diffusers_tiny_example_runs_end_to_end() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let res = run(&["--config", "examples/diffusers-tiny.toml"], &[("BOOT__RUN__OUT_DIR", out_s.as_str())], &root);
    assert!(res.status.success(), "diffusers-tiny failed:\n{}", String::from_utf8_lossy(&res.stderr));
    let eval = eval_json(&out);
    for k in ["student_1", "teacher_ddim_1", "teacher_ddim_10"] {
        assert!(eval[k]["ode_mse"].as_f64().is_some_and(f64::is_finite), "{k} in {eval}");
        assert!(eval[k]["images_per_s"].as_f64().is_some_and(|v| v > 0.0), "{k} in {eval}");
    }
    assert!(eval["teacher_ddim_10"]["ode_mse"].as_f64() < eval["teacher_ddim_1"]["ode_mse"].as_f64());
    assert_eq!(logged_losses(&out).len(), 4);
    assert!(out.join("grids/step-00000008.png").is_file());
}
