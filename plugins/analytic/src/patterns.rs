//! The built-in procedural image set: smooth, visually distinct images in `[-1, 1]` (soft disks, stripes,
//! ramps and checkers in random colours), a pure function of a seed. They are the default mixture means.

use std::f64::consts::PI;

use boot_sdk::rand::Rng;
use boot_sdk::rng::rng_for;

/// Largest absolute pixel value of a pattern, so that samples `mu + s * noise` mostly stay in `[-1, 1]`.
const AMPLITUDE: f64 = 0.8;

/// `count` images `[channels, size, size]`, flattened one after another. Image `k` is a disk, stripes, a ramp
/// or a checker as `k % 4` is 0, 1, 2 or 3, with colours and geometry drawn from `seed`.
pub fn procedural_images(count: usize, channels: usize, size: usize, seed: u64) -> Vec<f64> {
    let mut rng = rng_for(seed);
    let mut out = Vec::with_capacity(count * channels * size * size);
    for k in 0..count {
        let fg: Vec<f64> = (0..channels).map(|_| rng.random_range(-AMPLITUDE..AMPLITUDE)).collect();
        // The second colour sits across zero from the first, so every pattern has contrast.
        let bg: Vec<f64> =
            fg.iter().map(|&f| (-f + rng.random_range(-0.3..0.3)).clamp(-AMPLITUDE, AMPLITUDE)).collect();
        let pattern = Pattern::draw(k % 4, &mut rng);
        for c in 0..channels {
            for i in 0..size {
                for j in 0..size {
                    let y = (i as f64 + 0.5) / size as f64;
                    let x = (j as f64 + 0.5) / size as f64;
                    let v = pattern.blend(x, y);
                    out.push(bg[c] + v * (fg[c] - bg[c]));
                }
            }
        }
    }
    out
}

/// One pattern's geometry; [`Pattern::blend`] gives the weight of the first colour at a point of the unit square.
enum Pattern {
    Disk { cx: f64, cy: f64, radius: f64 },
    Stripes { angle: f64, cycles: f64, phase: f64 },
    Ramp { angle: f64 },
    Checker { cells: f64 },
}

impl Pattern {
    fn draw(kind: usize, rng: &mut impl Rng) -> Self {
        match kind {
            0 => Pattern::Disk {
                cx: rng.random_range(0.3..0.7),
                cy: rng.random_range(0.3..0.7),
                radius: rng.random_range(0.2..0.35),
            },
            1 => Pattern::Stripes {
                angle: rng.random_range(0.0..PI),
                cycles: rng.random_range(1.5..3.0),
                phase: rng.random_range(0.0..2.0 * PI),
            },
            2 => Pattern::Ramp { angle: rng.random_range(0.0..2.0 * PI) },
            _ => Pattern::Checker { cells: rng.random_range(2..=4) as f64 },
        }
    }

    fn blend(&self, x: f64, y: f64) -> f64 {
        match *self {
            Pattern::Disk { cx, cy, radius } => {
                let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
                1.0 / (1.0 + ((d - radius) / 0.04).exp())
            }
            Pattern::Stripes { angle, cycles, phase } => {
                0.5 + 0.5 * (2.0 * PI * cycles * (x * angle.cos() + y * angle.sin()) + phase).sin()
            }
            Pattern::Ramp { angle } => (0.5 + 0.7 * ((x - 0.5) * angle.cos() + (y - 0.5) * angle.sin())).clamp(0.0, 1.0),
            Pattern::Checker { cells } => 0.5 + 0.5 * (3.0 * (PI * cells * x).sin() * (PI * cells * y).sin()).tanh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_bounded_and_distinct() {
        let a = procedural_images(8, 3, 16, 7);
        assert_eq!(a, procedural_images(8, 3, 16, 7));
        assert_ne!(a, procedural_images(8, 3, 16, 8));
        assert!(a.iter().all(|v| v.abs() <= AMPLITUDE + 1e-12));
        let d = 3 * 16 * 16;
        for i in 0..8 {
            for j in 0..i {
                let dist: f64 = (0..d).map(|p| (a[i * d + p] - a[j * d + p]).powi(2)).sum::<f64>().sqrt();
                // Far apart compared with the default noise of a component, s * sqrt(D) = 0.1 * 27.7.
                assert!(dist > 5.0, "images {i} and {j} are only {dist} apart");
            }
        }
    }
}
