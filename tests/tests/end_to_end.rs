//! boot-host end to end on the analytic teacher: distillation beats DDIM-1, components swap from the config
//! alone, a resumed run continues with the losses of a straight one, and micro-batches give the whole batch's step.

mod common;

use common::{eval_json, logged_losses, run, small_config};

#[test]
fn distilled_student_beats_ddim_1() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(dir.path(), 1500, "");
    // Unconditional: DDIM-1 then lands on the mixture's mean, far from every mode.
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("num_classes = 2", "num_classes = 0")).unwrap();
    let out = run(&["--config", &cfg], &[("BOOT__TRAIN__DELTA", "0.1")], dir.path());
    assert!(out.status.success(), "training failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let out_dir = dir.path().join("out");
    let eval = eval_json(&out_dir);
    let metric = |sampler: &str, key: &str| eval[sampler][key].as_f64().unwrap_or_else(|| panic!("{sampler}.{key} in {eval}"));
    let (student, ddim1) = (metric("student_1", "ode_mse"), metric("teacher_ddim_1", "ode_mse"));
    assert!(student < 0.8 * ddim1, "student ode_mse {student} does not beat DDIM-1's {ddim1}");
    assert!(metric("student_1", "nll") < metric("teacher_ddim_1", "nll"), "student nll not below DDIM-1's: {eval}");
    assert!(metric("student_1", "mode_coverage") > metric("teacher_ddim_1", "mode_coverage"), "coverage: {eval}");
    // Exact distribution metrics for every sampler; DDIM-1's samples sit at the mean, in no mode.
    for sampler in ["teacher_ddim_1", "teacher_ddim_10", "student_1"] {
        assert!(metric(sampler, "fd_exact") >= -1e-6, "{sampler} fd_exact: {eval}");
        assert!((0.0..=1.0).contains(&metric(sampler, "mode_tv")), "{sampler} mode_tv: {eval}");
    }
    assert!(metric("student_1", "fd_exact") < metric("teacher_ddim_1", "fd_exact"), "fd_exact: {eval}");
    assert!(metric("student_1", "mode_tv") < metric("teacher_ddim_1", "mode_tv"), "mode_tv: {eval}");
    for f in ["metrics.jsonl", "checkpoints/step-00001500.safetensors", "grids/step-00001500.png"] {
        assert!(out_dir.join(f).is_file(), "{f} was not written");
    }
    // keep_checkpoints = 2
    assert_eq!(std::fs::read_dir(out_dir.join("checkpoints")).unwrap().count(), 2);
}

#[test]
fn solver_and_guidance_swap_from_the_config_only() {
    for (solver, guidance) in [("euler", "none"), ("heun", "cfg"), ("euler", "cfg")] {
        let dir = tempfile::tempdir().unwrap();
        // The file always names `none` guidance and the Heun solver; the environment swaps them. A `cfg`
        // swap brings its per-sample weight range (so the student is w-conditioned).
        let cfg = small_config(dir.path(), 6, "[solver]\nkind = \"heun\"\n[guidance]\nkind = \"none\"\n");
        let mut env = vec![("BOOT__SOLVER__KIND", solver), ("BOOT__GUIDANCE__KIND", guidance)];
        if guidance == "cfg" {
            env.extend([("BOOT__GUIDANCE__W_MIN", "1.0"), ("BOOT__GUIDANCE__W_MAX", "3.0")]);
        }
        let out = run(&["--config", &cfg], &env, dir.path());
        assert!(out.status.success(), "{solver}/{guidance} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let eval = eval_json(&dir.path().join("out"));
        assert!(eval["student_1"]["ode_mse"].as_f64().unwrap().is_finite());
        // A conditional run: the exact metrics against the labels' class mixtures, for every sampler.
        for sampler in ["teacher_ddim_1", "teacher_ddim_10", "student_1"] {
            for key in ["fd_exact", "mode_tv"] {
                assert!(eval[sampler][key].as_f64().is_some_and(f64::is_finite), "{sampler}.{key} in {eval}");
            }
        }
        assert_eq!(logged_losses(&dir.path().join("out")).len(), 6);
    }
}

#[test]
fn resume_gives_the_losses_of_a_straight_run() {
    let no_eval = ("BOOT__EVAL__AFTER_TRAINING", "false");
    let straight = tempfile::tempdir().unwrap();
    let cfg = small_config(straight.path(), 30, "");
    let out = run(&["--config", &cfg], &[no_eval], straight.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = logged_losses(&straight.path().join("out"));

    // Stop after 20 steps (a checkpoint is written there), then resume the 30-step run.
    let stopped = tempfile::tempdir().unwrap();
    let cfg = small_config(stopped.path(), 30, "");
    let first = run(&["--config", &cfg], &[no_eval, ("BOOT__TRAIN__STEPS", "20")], stopped.path());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let resumed = run(&["--config", &cfg, "--resume"], &[no_eval], stopped.path());
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let got = logged_losses(&stopped.path().join("out"));
    assert_eq!(got.len(), want.len(), "resumed log has {} steps, straight {}", got.len(), want.len());
    for ((s1, a), (s2, b)) in want.iter().zip(&got) {
        assert_eq!(s1, s2);
        assert!((a - b).abs() <= 1e-6 * a.abs().max(1e-12), "step {s1}: straight loss {a}, resumed {b}");
    }
}

/// Gradient accumulation: the analytic student trained 3 steps on batches of 8 in micro-batches of 3 (an
/// uneven split) logs the losses of, and ends with the weights of, the run with the whole batch at once.
#[test]
fn micro_batches_give_the_step_of_the_whole_batch() {
    let no_eval = ("BOOT__EVAL__AFTER_TRAINING", "false");
    let mut runs = Vec::new();
    for micro in [8, 3] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small_config(dir.path(), 3, "");
        let text = std::fs::read_to_string(&cfg).unwrap().replace("batch_size = 32", &format!("batch_size = 8\nmicro_batch = {micro}"));
        std::fs::write(&cfg, text).unwrap();
        // The boundary loss at steps 1 and 3. Adam's first steps move each weight by about lr * sign(grad),
        // which turns rounding in near-zero gradient entries into visible weight differences: a larger
        // adam_eps keeps the comparison about the gradients.
        let env = [no_eval, ("BOOT__TRAIN__BOUNDARY_EVERY", "2"), ("BOOT__TRAIN__ADAM_EPS", "1e-3")];
        let out = run(&["--config", &cfg], &env, dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let losses = logged_losses(&dir.path().join("out"));
        let ck = dir.path().join("out/checkpoints/step-00000003.safetensors");
        let tensors = boot_sdk::candle::safetensors::load(&ck, &boot_sdk::candle::Device::Cpu).unwrap();
        runs.push((losses, tensors, dir));
    }
    let ((want, whole, _), (got, split, _)) = (&runs[0], &runs[1]);
    assert_eq!(want.len(), 3, "one metrics row per step");
    assert_eq!(got.len(), 3, "one metrics row per step, however many micro-batches");
    for ((s1, a), (s2, b)) in want.iter().zip(got) {
        assert_eq!(s1, s2);
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "step {s1}: whole batch {a}, micro-batches {b}");
    }
    let mut compared = 0;
    for (name, w) in whole {
        if !(name.starts_with("student.") || name.starts_with("ema.")) {
            continue;
        }
        let s = &split[name];
        let w32 = w.to_dtype(boot_sdk::candle::DType::F32).unwrap();
        let s32 = s.to_dtype(boot_sdk::candle::DType::F32).unwrap();
        let scale = w32.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap().max(1.0);
        let diff = (&w32 - &s32).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff <= 1e-5 * scale, "{name}: max abs diff {diff} (scale {scale})");
        compared += 1;
    }
    assert!(compared > 0, "no student weights in the checkpoint");
}
