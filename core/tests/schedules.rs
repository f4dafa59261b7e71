//! Every built-in schedule is variance preserving with monotone lambda, and inverts its lambda.

use std::sync::Arc;

use boot_core::schedules::{BetaSchedule, CosineSchedule, EdmSchedule};
use boot_kit::{DiscreteDenoiser, Prediction};
use boot_sdk::{NoiseSchedule, ScheduleConfig, Times};

fn schedules() -> Vec<(&'static str, Box<dyn NoiseSchedule>)> {
    vec![
        ("cosine", Box::new(CosineSchedule)),
        ("linear", Box::new(BetaSchedule::linear(1000, 1e-4, 0.02).unwrap())),
        ("scaled-linear", Box::new(BetaSchedule::scaled_linear(1000, 0.00085, 0.012).unwrap())),
        ("edm", Box::new(EdmSchedule { sigma_min: 0.002, sigma_max: 80.0, rho: 7.0 })),
    ]
}

#[test]
fn alpha_sigma_are_variance_preserving() {
    for (name, s) in schedules() {
        for i in 0..=1000 {
            let t = i as f64 / 1000.0;
            let (a, sg) = (s.alpha(t), s.sigma(t));
            assert!((a * a + sg * sg - 1.0).abs() < 1e-12, "{name}: alpha^2 + sigma^2 = {} at t = {t}", a * a + sg * sg);
        }
    }
}

#[test]
fn lambda_increases_with_t() {
    for (name, s) in schedules() {
        let mut prev = f64::NEG_INFINITY;
        for i in 1..1000 {
            let t = i as f64 / 1000.0;
            let l = s.lambda(t);
            assert!(l > prev, "{name}: lambda({t}) = {l} not above {prev}");
            prev = l;
        }
    }
}

#[test]
fn t_of_lambda_inverts_lambda() {
    for (name, s) in schedules() {
        for i in 1..100 {
            let t = i as f64 / 100.0;
            let back = s.t_of_lambda(s.lambda(t));
            assert!((back - t).abs() < 1e-9, "{name}: t_of_lambda(lambda({t})) = {back}");
        }
    }
}

#[test]
fn discrete_schedule_maps_timesteps_through_lambda() {
    // Continuous time places training timestep i at t = i / (N - 1); lambda there is the timestep's own
    // lambda, and a discrete teacher recovers i (fractionally in between) from lambda.
    let s = BetaSchedule::scaled_linear(1000, 0.00085, 0.012).unwrap();
    for i in [0usize, 1, 10, 250, 500, 998, 999] {
        let t = i as f64 / 999.0;
        assert!((s.lambda(t) - s.lambdas()[i]).abs() < 1e-12);
        assert!((s.timestep_of_lambda(s.lambda(t)) - i as f64).abs() < 1e-9);
        // alpha_t^2 is the cumulative product of (1 - beta) at that timestep.
        let acp = 1.0 / (1.0 + (2.0f64 * s.lambdas()[i]).exp());
        assert!((acp - s.alphas_cumprod()[i]).abs() < 1e-12);
        assert!((s.alpha(t).powi(2) - acp).abs() < 1e-12);
    }
    let mid = (s.lambdas()[100] + s.lambdas()[101]) / 2.0;
    assert!((s.timestep_of_lambda(mid) - 100.5).abs() < 1e-9);
}

#[test]
fn edm_schedule_spans_sigma_range() {
    let s = EdmSchedule { sigma_min: 0.002, sigma_max: 80.0, rho: 7.0 };
    assert!((s.edm_sigma(0.0) - 0.002).abs() < 1e-12);
    assert!((s.edm_sigma(1.0) - 80.0).abs() < 1e-9);
    assert!((s.lambda(0.3) - s.edm_sigma(0.3).ln()).abs() < 1e-12);
}

#[test]
fn discrete_teacher_and_scaled_linear_config_give_the_same_timesteps() {
    // A discrete-time teacher's own schedule (Stable Diffusion's betas, as its scheduler_config.json gives
    // them) and the run's `[schedule] kind = "scaled-linear"` are one implementation: the timesteps the
    // teacher feeds its network for the run's times equal those of its native schedule.
    let teacher = DiscreteDenoiser::new(Arc::new(BetaSchedule::scaled_linear(1000, 0.00085, 0.012).unwrap()), Prediction::Eps, 1.0);
    let config: Box<dyn ScheduleConfig> = boot_sdk::serde_json::from_str(r#"{"kind": "scaled-linear"}"#).unwrap();
    let run = config.build().unwrap();
    let ts: Vec<f64> = (0..=2000).map(|i| i as f64 / 2000.0).collect();
    let from_run = teacher.timesteps_of_lambda(&Times::new(run.as_ref(), ts.clone()).lambda);
    let native = teacher.timesteps_of_lambda(&Times::new(teacher.schedule().as_ref(), ts.clone()).lambda);
    for ((a, b), t) in from_run.iter().zip(&native).zip(&ts) {
        assert!((a - b).abs() / 999.0 <= 1e-12, "t = {t}: {a} vs {b}");
        assert!((a / 999.0 - t).abs() <= 1e-12, "t = {t}: timestep {a}");
    }
}
