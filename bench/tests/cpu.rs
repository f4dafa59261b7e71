//! boot-bench on CPU with the tiny configurations (seconds): the whole path (the example config read by
//! boot-host's loader, random checkpoint, plugin loading, core's components and step, samplers, JSON)
//! runs, the half-precision path follows the f32 one, boot-host on the same example and checkpoint gives the
//! benchmark's first loss, and the FLOP model gives the paper networks' known sizes. Needs the plugins built next to the binary
//! (`cargo build --release --workspace`, as CI does before the tests).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str], out: &Path) -> Value {
    let exe = env!("CARGO_BIN_EXE_boot-bench");
    let o = Command::new(exe).args(args).arg("--out").arg(out).output().expect("run boot-bench");
    assert!(
        o.status.success(),
        "boot-bench {args:?} failed (build the workspace first: cargo build --release --workspace):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).expect("JSON written")).expect("valid JSON")
}

fn losses(v: &Value) -> Vec<f64> {
    v["train"]["losses"].as_array().expect("losses").iter().map(|x| x.as_f64().expect("number")).collect()
}

const QUICK: &[&str] = &["--device", "cpu", "--steps", "4", "--warmup", "1", "--ddim-steps", "2", "--infer-reps", "1"];

#[test]
fn tiny_edm_f32_and_f16_agree() {
    let dir = tempfile::tempdir().unwrap();
    let a = bench(&[QUICK, &["--config", "tiny-edm"]].concat(), &dir.path().join("f32.json"));
    let b = bench(&[QUICK, &["--config", "tiny-edm", "--dtype", "f16"]].concat(), &dir.path().join("f16.json"));
    for v in [&a, &b] {
        assert_eq!(v["schema"], "boot-bench/1");
        assert_eq!(v["timed_steps"], 4);
        assert_eq!(v["warmup_steps"], 1);
        assert!(v["train"]["samples_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["inference"]["student_one_step"]["images_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["inference"]["teacher_ddim"]["images_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["train"]["losses_finite"].as_bool().unwrap());
    }
    // Same weights, noise and steps: the f16 run (teacher in f16, student f16 compute over f32 master
    // weights) gives the f32 loss before any update, and tracks it through the next 4 AdamW updates (Adam's
    // first steps move every weight by about lr whatever its gradient, so rounding can flip tiny ones).
    let (la, lb) = (losses(&a), losses(&b));
    assert_eq!(la.len(), 5);
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        let tol = if i == 0 { 0.01 } else { 0.05 };
        assert!((x - y).abs() <= tol * x.abs().max(1e-3), "f32 losses {la:?} vs f16 {lb:?}");
    }
}

#[test]
fn tiny_adm_cfg_runs() {
    let dir = tempfile::tempdir().unwrap();
    let v = bench(&[QUICK, &["--config", "tiny", "--batch", "2"]].concat(), &dir.path().join("tiny.json"));
    assert_eq!(v["batch"], 2);
    assert_eq!(v["inference"]["teacher_ddim"]["network_passes_per_step"], 2.0);
    // Student: y_t, y_s (+ backward), y_tmax every k steps (+ backward); teacher: CFG x 2 x Heun 2 + boundary.
    // k is the example's train.boundary_every (examples/imagenet-tiny.toml: 2).
    let k = v["boundary_every"].as_f64().unwrap();
    assert_eq!(k, 2.0);
    let (fs, ft) = (v["flops"]["forward_per_sample_student"].as_f64().unwrap(), v["flops"]["forward_per_sample_teacher"].as_f64().unwrap());
    let per_step = v["flops"]["per_sample_step"].as_f64().unwrap();
    assert!((per_step - ((4.0 + 3.0 / k) * fs + 2.0 * (2.0 + 1.0 / k) * ft)).abs() < 1e-6 * per_step);
}

#[test]
fn describe_gives_the_paper_networks() {
    let exe = env!("CARGO_BIN_EXE_boot-bench");
    let describe = |c: &str| -> Value {
        let o = Command::new(exe).args(["--config", c, "--describe"]).output().expect("run boot-bench");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).expect("JSON")
    };
    // EDM's CIFAR-10 DDPM++: 55.73M parameters (plugins/edm/README.md).
    let c = describe("cifar10");
    assert_eq!(c["teacher_trainable"], 55_733_891);
    // The Table 3 ADM: 226.45M parameters, 157.4 GFLOP per forward (torch's FlopCounterMode agrees, see
    // bench/README.md).
    let i = describe("imagenet64");
    assert_eq!(i["teacher_trainable"], 226_453_251);
    let g = i["forward_gflop_per_sample"]["teacher"].as_f64().unwrap();
    assert!((g - 157.362).abs() < 0.01, "{g}");
}

#[test]
fn boot_host_runs_what_the_benchmark_measures() {
    // boot-bench --dump writes the random checkpoint and core's step-0 loss; boot-host on the same example
    // config pointed at that checkpoint gives the same first loss (the same components, built by core).
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    let exe = env!("CARGO_BIN_EXE_boot-bench");
    let o = Command::new(exe).args(["--config", "tiny-edm", "--device", "cpu", "--batch", "3", "--dump"]).arg(&ck).output().expect("run boot-bench");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dumped: Value = serde_json::from_str(&std::fs::read_to_string(ck.join("loss.json")).unwrap()).unwrap();
    let host = Path::new(exe).with_file_name("boot-host");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = dir.path().join("run");
    let o = Command::new(&host)
        .args(["--config", "examples/edm-tiny.toml"])
        .current_dir(&root)
        .env("BOOT_LOG", "warn")
        .env("BOOT__RUN__OUT_DIR", &out)
        .env("BOOT__TEACHER__CHECKPOINT", ck.join("teacher.safetensors"))
        .env("BOOT__TEACHER__NETWORK", ck.join("teacher.json"))
        .env("BOOT__TRAIN__STEPS", "1")
        .env("BOOT__TRAIN__BATCH_SIZE", "3")
        .env("BOOT__EVAL__AFTER_TRAINING", "false")
        .output()
        .expect("run boot-host (cargo build --release --workspace first)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line: Value = serde_json::from_str(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(line["loss"].as_f64(), dumped["loss_total"].as_f64(), "boot-host {line} vs boot-bench {dumped}");
}
