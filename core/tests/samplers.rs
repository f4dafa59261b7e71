//! Signal-ODE-N equals DDIM-N; DDIM converges to the exact ODE solution; sampler names round-trip.

mod common;

use boot_core::guidance::NoGuidance;
use boot_core::samplers::{SamplerKind, TeacherSampling};
use boot_core::schedules::{CosineSchedule, BetaSchedule};
use boot_sdk::{Cond, NoiseSchedule};
use common::{max_abs, noise, rms, times, GaussianTeacher};

fn sampling<'a>(teacher: &'a GaussianTeacher, g: &'a NoGuidance, sch: &'a dyn NoiseSchedule, cond: &'a Cond) -> TeacherSampling<'a> {
    TeacherSampling { teacher, guidance: g, schedule: sch, cond, w: None, t_max: 0.99, t_min: 0.0 }
}

#[test]
fn signal_ode_equals_ddim() {
    let teacher = GaussianTeacher::new([3, 8, 8], 0.4);
    let g = NoGuidance::default();
    let cond = Cond::none();
    let eps = noise(4, [3, 8, 8], 7);
    let discrete = BetaSchedule::linear(1000, 1e-4, 0.02).unwrap();
    for sch in [&CosineSchedule as &dyn NoiseSchedule, &discrete] {
        let s = sampling(&teacher, &g, sch, &cond);
        for n in [1, 2, 10, 50] {
            let (d, o) = (s.ddim(&eps, n).unwrap(), s.signal_ode(&eps, n).unwrap());
            let err = max_abs(&d, &o);
            assert!(err < 1e-5, "signal-ODE-{n} differs from DDIM-{n} by {err}");
        }
    }
}

#[test]
fn ddim_converges_to_the_exact_ode_solution() {
    let teacher = GaussianTeacher::new([3, 8, 8], 0.4);
    let g = NoGuidance::default();
    let cond = Cond::none();
    let sch = CosineSchedule;
    let eps = noise(4, [3, 8, 8], 8);
    let exact = teacher.ode_map(&eps, &times(&sch, &[0.99; 4]), &times(&sch, &[0.0; 4]));
    let s = sampling(&teacher, &g, &sch, &cond);
    let errors: Vec<f64> = [1, 10, 100].iter().map(|&n| rms(&s.ddim(&eps, n).unwrap(), &exact)).collect();
    assert!(errors[0] > errors[1] && errors[1] > errors[2], "DDIM errors do not shrink with steps: {errors:?}");
    assert!(errors[2] < 1e-2, "DDIM-100 is {} from the exact solution", errors[2]);
}

#[test]
fn sampler_names_round_trip() {
    for k in [SamplerKind::Student, SamplerKind::TeacherDdim(50), SamplerKind::TeacherSignalOde(3)] {
        assert_eq!(k.to_string().parse::<SamplerKind>().unwrap(), k);
    }
    assert_eq!("ddim-10".parse::<SamplerKind>().unwrap(), SamplerKind::TeacherDdim(10));
    assert!("ddim-0".parse::<SamplerKind>().is_err());
    assert!("euler".parse::<SamplerKind>().is_err());
}
