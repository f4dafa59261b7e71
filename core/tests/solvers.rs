//! The Euler target is one DDIM step; Heun's target is closer than Euler's to the exact ODE.

mod common;

use boot_core::schedules::CosineSchedule;
use boot_core::solvers::{Euler, Heun};
use boot_sdk::{Cond, Solver, Teacher, Times};
use common::{max_abs, noise, rms, times, GaussianTeacher};

#[test]
fn euler_target_equals_one_ddim_step() {
    let sch = CosineSchedule;
    let teacher = GaussianTeacher::new([2, 4, 4], 0.5);
    let eps = noise(4, [2, 4, 4], 1);
    let y_t = (noise(4, [2, 4, 4], 2) * 0.5).unwrap();
    let (t, s) = (times(&sch, &[0.9, 0.6, 0.3, 0.05]), times(&sch, &[0.86, 0.56, 0.26, 0.01]));
    let mut f = |x: &_, tm: &Times| teacher.denoise(x, tm, &Cond::none());
    let target = Euler.target(&y_t, &eps, &t, &s, &mut f).unwrap();
    // DDIM (Eq. 1) in x space, then back to signal: y_s = (x_s - sigma_s eps) / alpha_s.
    let x_t = t.noisy(&y_t, &eps).unwrap();
    let f_t = teacher.denoise(&x_t, &t, &Cond::none()).unwrap();
    let mut rows = Vec::new();
    for i in 0..4 {
        let (a_t, s_t, a_s, s_s) = (t.alpha[i], t.sigma[i], s.alpha[i], s.sigma[i]);
        let x_s = ((x_t.get(i).unwrap() * (s_s / s_t)).unwrap() + (f_t.get(i).unwrap() * (a_s - a_t * s_s / s_t)).unwrap()).unwrap();
        rows.push(((x_s - (eps.get(i).unwrap() * s_s).unwrap()).unwrap() / a_s).unwrap());
    }
    let ddim = boot_sdk::candle::Tensor::stack(&rows, 0).unwrap();
    let err = max_abs(&target, &ddim);
    assert!(err < 1e-5, "Euler target differs from a DDIM step by {err}");
}

#[test]
fn heun_target_is_closer_to_the_exact_ode_than_euler() {
    let sch = CosineSchedule;
    let teacher = GaussianTeacher::new([3, 4, 4], 0.3);
    let n = 6;
    let eps = noise(n, [3, 4, 4], 3);
    for (tv, delta) in [(0.95, 0.04), (0.7, 0.04), (0.4, 0.04), (0.2, 0.1)] {
        let t = times(&sch, &vec![tv; n]);
        let s = times(&sch, &vec![tv - delta; n]);
        // y_t on the exact trajectory that starts from x_1 = eps.
        let x_t = teacher.ode_map(&eps, &times(&sch, &vec![1.0; n]), &t);
        let y_t = ((&x_t - (&eps * t.sigma[0]).unwrap()).unwrap() / t.alpha[0]).unwrap();
        let x_s = teacher.ode_map(&x_t, &t, &s);
        let exact = ((&x_s - (&eps * s.sigma[0]).unwrap()).unwrap() / s.alpha[0]).unwrap();
        let mut f = |x: &_, tm: &Times| teacher.denoise(x, tm, &Cond::none());
        let euler = Euler.target(&y_t, &eps, &t, &s, &mut f).unwrap();
        let heun = Heun.target(&y_t, &eps, &t, &s, &mut f).unwrap();
        let (e, h) = (rms(&euler, &exact), rms(&heun, &exact));
        assert!(h < e, "t = {tv}: Heun error {h} not below Euler error {e}");
    }
}
