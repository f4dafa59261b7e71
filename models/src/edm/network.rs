//! The inner network of an EDM model: either architecture behind one interface.

use boot_sdk::candle::{Result, Tensor};
use boot_sdk::candle_nn::VarBuilder;

use super::config::ArchConfig;
use super::dhariwal_unet::DhariwalUNet;
use super::song_unet::SongUNet;

/// Whether a state-dict entry of an EDM network is a buffer (a constant: FIR filters, Fourier frequencies)
/// rather than a trainable parameter.
pub fn is_buffer(name: &str) -> bool {
    name.ends_with("resample_filter") || name.ends_with("map_noise.freqs")
}

/// `F(x, noise_labels, class_labels)` of a SongUNet or DhariwalUNet.
#[derive(Debug, Clone)]
pub enum EdmNetwork {
    /// DDPM++ / NCSN++.
    Song(SongUNet),
    /// ADM.
    Dhariwal(DhariwalUNet),
}

impl EdmNetwork {
    /// Builds the network described by `arch` from `vb` (at the network's own key prefix).
    pub fn new(vb: VarBuilder, arch: &ArchConfig) -> Result<Self> {
        Ok(match arch {
            ArchConfig::Song(c) => EdmNetwork::Song(SongUNet::new(vb, c)?),
            ArchConfig::Dhariwal(c) => EdmNetwork::Dhariwal(DhariwalUNet::new(vb, c)?),
        })
    }

    /// Number of class labels (0 = unconditional).
    pub fn label_dim(&self) -> usize {
        match self {
            EdmNetwork::Song(n) => n.config().label_dim,
            EdmNetwork::Dhariwal(n) => n.config().label_dim,
        }
    }

    /// Width of the noise embedding (`map_noise` output).
    pub fn noise_channels(&self) -> usize {
        match self {
            EdmNetwork::Song(n) => n.noise_channels(),
            EdmNetwork::Dhariwal(n) => n.config().model_channels,
        }
    }

    /// Width of the vector class labels are added to (SongUNet: the noise embedding; DhariwalUNet: the
    /// embedding after `map_layer1`); a student's extra embeddings have this width.
    pub fn label_point_channels(&self) -> usize {
        match self {
            EdmNetwork::Song(n) => n.noise_channels(),
            EdmNetwork::Dhariwal(n) => n.emb_channels(),
        }
    }

    /// The network's own noise embedding (`map_noise`) of `x` (`[N]`), `[N, noise_channels]`, in the
    /// network's half order.
    pub fn embed_noise(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            EdmNetwork::Song(n) => n.map_noise().forward(x),
            EdmNetwork::Dhariwal(n) => n.map_noise().forward(x),
        }
    }

    /// `F(x, noise_labels, class_labels)` with an optional `extra` vector added where labels are.
    pub fn forward(&self, x: &Tensor, noise_labels: &Tensor, class_labels: Option<&Tensor>, extra: Option<&Tensor>) -> Result<Tensor> {
        match self {
            EdmNetwork::Song(n) => n.forward(x, noise_labels, class_labels, extra),
            EdmNetwork::Dhariwal(n) => n.forward(x, noise_labels, class_labels, extra),
        }
    }
}
