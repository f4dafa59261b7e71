//! Built-in solvers for the bootstrapping target (Algorithm 1 line 10, Eq. 15).

mod euler;
mod heun;

pub use euler::{Euler, EulerConfig};
pub use heun::{Heun, HeunConfig};
