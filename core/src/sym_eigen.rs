//! Eigendecomposition of a small real symmetric matrix in f64 (cyclic Jacobi rotations), and the square root
//! of a positive semi-definite one built on it. Jacobi is slow for large matrices (`O(n^3)` per sweep, a few
//! sweeps) but accurate to the last digits for the few-hundred-dimensional covariances eval uses.

/// Eigenvalues and orthonormal eigenvectors of a symmetric `n x n` matrix.
#[derive(Debug, Clone)]
pub struct SymEigen {
    /// Matrix size `n`.
    pub n: usize,
    /// The `n` eigenvalues (in no particular order).
    pub values: Vec<f64>,
    /// Row-major `n x n`; column `k` is the eigenvector of `values[k]`.
    pub vectors: Vec<f64>,
}

/// Sweeps after which Jacobi gives up (it converges quadratically; a few sweeps are typical).
const MAX_SWEEPS: usize = 64;

impl SymEigen {
    /// Decomposes the row-major symmetric `n x n` matrix `a` (symmetrised as `(a + a^T) / 2` first).
    pub fn new(a: &[f64], n: usize) -> boot_sdk::Result<Self> {
        anyhow::ensure!(a.len() == n * n, "expected a {n} x {n} matrix, got {} values", a.len());
        anyhow::ensure!(a.iter().all(|x| x.is_finite()), "the matrix has non-finite entries");
        let mut m: Vec<f64> = (0..n * n).map(|i| 0.5 * (a[i] + a[(i % n) * n + i / n])).collect();
        let mut v: Vec<f64> = (0..n * n).map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let total: f64 = m.iter().map(|x| x * x).sum();
        for _ in 0..MAX_SWEEPS {
            let off: f64 = (0..n).flat_map(|p| (p + 1..n).map(move |q| (p, q))).map(|(p, q)| m[p * n + q].powi(2)).sum();
            if off <= total * 1e-30 {
                let values = (0..n).map(|i| m[i * n + i]).collect();
                return Ok(Self { n, values, vectors: v });
            }
            for p in 0..n {
                for q in p + 1..n {
                    rotate(&mut m, &mut v, n, p, q);
                }
            }
        }
        anyhow::bail!("Jacobi eigen solver did not converge in {MAX_SWEEPS} sweeps")
    }

    /// `V f(L) V^T` for the eigenvalues `L`: a matrix function, row-major.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Vec<f64> {
        let n = self.n;
        let fl: Vec<f64> = self.values.iter().map(|&l| f(l)).collect();
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let s: f64 = (0..n).map(|k| self.vectors[i * n + k] * fl[k] * self.vectors[j * n + k]).sum();
                out[i * n + j] = s;
                out[j * n + i] = s;
            }
        }
        out
    }
}

/// One Jacobi rotation `m <- J^T m J`, `v <- v J` that zeroes `m[p][q]`.
fn rotate(m: &mut [f64], v: &mut [f64], n: usize, p: usize, q: usize) {
    let apq = m[p * n + q];
    if apq == 0.0 {
        return;
    }
    let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
    let t = theta.signum() / (theta.abs() + theta.hypot(1.0));
    let c = 1.0 / t.hypot(1.0);
    let s = t * c;
    for k in 0..n {
        let (kp, kq) = (m[k * n + p], m[k * n + q]);
        m[k * n + p] = c * kp - s * kq;
        m[k * n + q] = s * kp + c * kq;
    }
    for k in 0..n {
        let (pk, qk) = (m[p * n + k], m[q * n + k]);
        m[p * n + k] = c * pk - s * qk;
        m[q * n + k] = s * pk + c * qk;
    }
    m[p * n + q] = 0.0;
    m[q * n + p] = 0.0;
    for k in 0..n {
        let (kp, kq) = (v[k * n + p], v[k * n + q]);
        v[k * n + p] = c * kp - s * kq;
        v[k * n + q] = s * kp + c * kq;
    }
}

/// The symmetric square root of a positive semi-definite row-major `n x n` matrix (negative eigenvalues from
/// rounding are taken as 0).
pub fn psd_sqrt(a: &[f64], n: usize) -> boot_sdk::Result<Vec<f64>> {
    Ok(SymEigen::new(a, n)?.map(|l| l.max(0.0).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random symmetric PSD matrix `A A^T` from a fixed LCG.
    fn random_psd(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let a: Vec<f64> = (0..n * n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect();
        matmul(&a, &transpose(&a, n), n)
    }

    fn transpose(a: &[f64], n: usize) -> Vec<f64> {
        (0..n * n).map(|i| a[(i % n) * n + i / n]).collect()
    }

    fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        (0..n * n).map(|i| (0..n).map(|k| a[(i / n) * n + k] * b[k * n + i % n]).sum()).collect()
    }

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn decomposition_reconstructs_the_matrix() -> boot_sdk::Result<()> {
        let n = 24;
        let a = random_psd(n, 1);
        let e = SymEigen::new(&a, n)?;
        assert!(max_diff(&e.map(|l| l), &a) < 1e-12);
        let vtv = matmul(&transpose(&e.vectors, n), &e.vectors, n);
        let eye: Vec<f64> = (0..n * n).map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
        assert!(max_diff(&vtv, &eye) < 1e-12);
        Ok(())
    }

    #[test]
    fn square_root_squares_back() -> boot_sdk::Result<()> {
        let n = 16;
        let a = random_psd(n, 2);
        let r = psd_sqrt(&a, n)?;
        assert!(max_diff(&matmul(&r, &r, n), &a) < 1e-12);
        // A diagonal matrix: the square roots of its entries, a rank-deficient one included.
        assert_eq!(psd_sqrt(&[4.0, 0.0, 0.0, 0.0], 2)?, vec![2.0, 0.0, 0.0, 0.0]);
        assert!(psd_sqrt(&[1.0, 2.0], 2).is_err() && psd_sqrt(&[f64::NAN], 1).is_err());
        Ok(())
    }
}
