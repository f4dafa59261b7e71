//! insta snapshots of the teacher's and the fresh student's outputs on fixed inputs (the `adm_unet_c10`
//! fixture weights, seeded noise, fixed labels and times), as rounded summaries: a change in the network,
//! the time mapping, the eps -> x0 conversion or the student's initialisation shows up as a diff.
//! Times stay away from t = 1, where x0 of an eps model is amplified by 1 / alpha and the last digits
//! would depend on the machine's float rounding.
//!
//! Always on the CPU in f32 (`BOOT_TEST_DEVICE` / `BOOT_TEST_DTYPE` do not apply): the snapshots are the CPU
//! path's exact regression record, not a parity check with a tolerance.

mod common;

use boot_sdk::candle::Tensor;
use boot_sdk::BetaSchedule;
use boot_sdk::serde_json::json;
use boot_sdk::Cond;
use common::*;

fn r4(x: f64) -> f64 {
    let r = (x * 1e4).round() / 1e4;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// Shape, mean, std, min, max and a few values at fixed positions, rounded to 4 decimals.
fn summary(x: &Tensor) -> String {
    let v = f64v(x);
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let picks: Vec<f64> = [0, 1, 100, 500, 1000, v.len() - 1].iter().map(|&i| r4(v[i])).collect();
    format!("shape: {:?}\nmean: {}\nstd: {}\nmin: {}\nmax: {}\nvalues[0, 1, 100, 500, 1000, -1]: {:?}\n", x.dims(), r4(mean), r4(std), r4(min), r4(max), picks)
}

#[test]
fn teacher_outputs() {
    let s = BetaSchedule::cosine(1000).unwrap();
    let teacher = teacher_in(&cpu_ctx(), json!({ "null_class": "zero" }));
    let x = noise(100, 4);
    let cond = Cond::classes(vec![Some(0), Some(3), None, Some(9)]);
    let x0 = teacher.denoise(&x, &times(&s, &[0.05, 0.3, 0.55, 0.8]), &cond).unwrap();
    insta::assert_snapshot!("teacher_x0", summary(&x0));
    let cfg = teacher.denoise(&x, &times(&s, &[0.5; 4]), &Cond::classes(vec![Some(5); 4])).unwrap();
    insta::assert_snapshot!("teacher_x0_class5_t05", summary(&cfg));
}

#[test]
fn fresh_student_outputs() {
    let s = BetaSchedule::cosine(1000).unwrap();
    let b = build_student_in(&cpu_ctx(), json!({ "null_class": "zero" }), json!({}), true, 0.8, None);
    let eps = noise(200, 4);
    let cond = Cond::classes(vec![Some(1), Some(1), Some(7), None]);
    let y = b.student.forward(&eps, &times(&s, &[0.0, 0.2, 0.5, 0.8]), &cond, Some(&[1.0, 2.0, 3.0, 5.0])).unwrap();
    insta::assert_snapshot!("fresh_student_y", summary(&y));
}
