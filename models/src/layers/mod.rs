//! Layers the networks are made of, each a struct built with `new(vb, ..)` and applied with `forward`.

pub mod activation;
pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod group_norm;
pub mod label;
pub mod layer_norm;
pub mod linear;
pub mod resample;
pub mod strided_conv;
