//! The EDM examples through the built `boot-host`: `examples/edm-tiny.toml` distills the tiny fixture teacher
//! end to end on CPU; `examples/edm-cifar10.toml` types completely (plugins load, every key is known).

mod common;

use std::path::PathBuf;

use common::{eval_json, logged_losses, run};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn edm_tiny_example_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let env = [("BOOT__RUN__OUT_DIR", out_s.as_str()), ("BOOT__TRAIN__STEPS", "4")];
    let res = run(&["--config", "examples/edm-tiny.toml"], &env, &repo_root());
    assert!(res.status.success(), "edm-tiny failed:\n{}", String::from_utf8_lossy(&res.stderr));
    let eval = eval_json(&out);
    for k in ["student_1", "teacher_ddim_1", "teacher_ddim_10"] {
        assert!(eval[k]["ode_mse"].as_f64().is_some_and(f64::is_finite), "{k} in {eval}");
    }
    assert!(eval["teacher_ddim_10"]["ode_mse"].as_f64() < eval["teacher_ddim_1"]["ode_mse"].as_f64());
    assert_eq!(logged_losses(&out).len(), 4);
    assert!(out.join("checkpoints/step-00000004.safetensors").is_file());
}

#[test]
fn edm_cifar10_example_types_completely() {
    let res = run(&["plugins", "--config", "examples/edm-cifar10.toml"], &[], &repo_root());
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let listing = String::from_utf8_lossy(&res.stdout);
    assert!(listing.contains("edm-student"), "{listing}");
}
