//! Noise-level and timestep embeddings.

pub mod fourier;
pub mod positional;
pub mod timesteps;
