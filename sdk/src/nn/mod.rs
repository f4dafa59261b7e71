//! Discrete-time noise schedules shared by the core schedules and discrete-time teachers. The layers and
//! networks are in the model library (`boot-models`), the kernels in [`crate::ops`].

pub mod beta_schedule;
