//! The Fréchet distance of feature fits (`boot_core::gaussian_fd`) against closed forms: identical
//! statistics, commuting covariances (`sum (sqrt a_i - sqrt b_i)^2`), a non-commuting 2x2 pair
//! (`tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))`), and the batched moments against a direct fit.

use boot_core::gaussian_fd::{frechet_distance, sqrt_psd, GaussianFit, MomentAccumulator};
use boot_sdk::candle::{Device, Tensor};
use nalgebra::{DMatrix, DVector};

fn fit(mean: Vec<f64>, cov: DMatrix<f64>) -> GaussianFit {
    GaussianFit { mean: DVector::from_vec(mean), cov, count: 100 }
}

/// A random rotation-like orthonormal basis of size `d` (QR of a fixed matrix).
fn basis(d: usize) -> DMatrix<f64> {
    DMatrix::from_fn(d, d, |i, j| ((i * 7 + j * 13) as f64 * 0.37).sin()).qr().q()
}

#[test]
fn identical_statistics_are_at_distance_zero() {
    let d = 64;
    let u = basis(d);
    let cov = &u * DMatrix::from_diagonal(&DVector::from_fn(d, |i, _| 1e-3 + i as f64)) * u.transpose();
    let a = fit((0..d).map(|i| i as f64 * 0.1).collect(), cov);
    let fd = frechet_distance(&a, &a);
    println!("FD(a, a) = {fd:e}");
    assert!(fd.abs() < 1e-8, "{fd}");
    // Same covariance, shifted mean: the trace terms cancel and only |dm|^2 = d * 0.01 is left.
    let b = GaussianFit { mean: a.mean.add_scalar(0.1), ..a.clone() };
    let fd = frechet_distance(&a, &b);
    println!("FD(a, a + 0.1) = {fd}");
    assert!((fd - d as f64 * 0.01).abs() < 1e-8, "{fd}");
}

#[test]
fn commuting_covariances_match_the_closed_form() {
    let d = 32;
    let u = basis(d);
    let la = DVector::from_fn(d, |i, _| 0.5 + (i % 5) as f64);
    let lb = DVector::from_fn(d, |i, _| 2.0 + (i % 3) as f64 * 0.7);
    let rot = |l: &DVector<f64>| &u * DMatrix::from_diagonal(l) * u.transpose();
    let (ma, mb): (Vec<f64>, Vec<f64>) = ((0..d).map(|i| i as f64).collect(), (0..d).map(|i| i as f64 + 0.5).collect());
    let expected = d as f64 * 0.25 + la.iter().zip(lb.iter()).map(|(a, b)| (a.sqrt() - b.sqrt()).powi(2)).sum::<f64>();
    let fd = frechet_distance(&fit(ma, rot(&la)), &fit(mb, rot(&lb)));
    println!("FD = {fd}, closed form {expected}");
    assert!((fd - expected).abs() < 1e-9 * expected, "{fd} vs {expected}");
}

#[test]
fn non_commuting_2x2_matches_the_closed_form() {
    let s1 = DMatrix::<f64>::from_row_slice(2, 2, &[2.0, 0.6, 0.6, 1.0]);
    let s2 = DMatrix::<f64>::from_row_slice(2, 2, &[0.5, -0.3, -0.3, 3.0]);
    let p = &s1 * &s2;
    let det: f64 = s1.determinant() * s2.determinant();
    let tr_sqrt = (p.trace() + 2.0 * det.sqrt()).sqrt();
    let expected = (1.0f64 + 4.0) + s1.trace() + s2.trace() - 2.0 * tr_sqrt;
    let fd = frechet_distance(&fit(vec![0.0, 0.0], s1), &fit(vec![1.0, -2.0], s2));
    println!("FD = {fd}, closed form {expected}");
    assert!((fd - expected).abs() < 1e-12, "{fd} vs {expected}");
}

#[test]
fn square_root_of_a_psd_matrix_squares_back() {
    let u = basis(16);
    let m = &u * DMatrix::from_diagonal(&DVector::from_fn(16, |i, _| (i as f64 - 2.0).max(0.0))) * u.transpose();
    let r = sqrt_psd(&m);
    assert!((&r * &r - &m).abs().max() < 1e-10);
}

#[test]
fn batched_moments_equal_a_direct_fit() {
    let (n, d) = (37, 5);
    let x: Vec<f64> = (0..n * d).map(|k| 100.0 + ((k * 31 % 17) as f64 * 0.61).sin() * (1 + k % d) as f64).collect();
    let mut acc = MomentAccumulator::default();
    for (first, len) in [(0, 10), (10, 1), (11, 26)] {
        acc.add(&Tensor::from_vec(x[first * d..(first + len) * d].to_vec(), (len, d), &Device::Cpu).unwrap()).unwrap();
    }
    let got = acc.finish().unwrap();
    let rows = DMatrix::from_row_slice(n, d, &x);
    let mean = rows.row_mean().transpose();
    let centred = DMatrix::from_fn(n, d, |i, j| rows[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (n - 1) as f64;
    assert_eq!(got.count, n);
    assert!((got.mean - mean).abs().max() < 1e-10);
    assert!((got.cov - cov).abs().max() < 1e-10);
}
