//! A text-conditional diffusers `UNet2DConditionModel` on a beta schedule (Stable Diffusion, DeepFloyd IF
//! stage I): its signal prediction given text states ([`predict_x0`]) and the BOOT student's [`Backbone`] over
//! it ([`TextUNetBackbone`]): the network at the fixed teacher timestep `s_max`, input the noise `eps`, the
//! student's new embeddings added to the time embedding (alongside the text addition embedding of an IF UNet,
//! which sees the same text states).

use boot_models::diffusers::UNet2DConditionModel;
use boot_sdk::candle::{DType, Device, Tensor};
use boot_sdk::{Cond, Times};

use crate::{text_states, Backbone, DiscreteDenoiser};

/// Signal prediction of `unet` for `x_t` at schedule `timesteps` given text states `context` (no attention
/// mask reaches the UNet: neither `StableDiffusionPipeline` nor `IFPipeline` passes one), with `extra` added to
/// the time embedding (a student's new embeddings). Learned-variance output channels are split off.
pub fn predict_x0(unet: &UNet2DConditionModel, discrete: &DiscreteDenoiser, x_t: &Tensor, timesteps: &[f64], context: &Tensor, extra: Option<&Tensor>) -> boot_sdk::Result<Tensor> {
    let t = discrete.timestep_input(timesteps, boot_models::embedding_dtype(x_t.dtype()), x_t.device())?;
    let out = unet.forward(x_t, &t, &context.to_dtype(x_t.dtype())?, None, None, extra)?;
    discrete.to_x0(x_t, &out, timesteps)
}

/// The teacher's text-conditional UNet at the fixed timestep `s_max`.
pub struct TextUNetBackbone {
    unet: UNet2DConditionModel,
    discrete: DiscreteDenoiser,
    s_max: f64,
    kind: &'static str,
}

impl TextUNetBackbone {
    /// `unet` run at teacher timestep `s_max` of `discrete`; `kind` names the student in errors.
    pub fn new(unet: UNet2DConditionModel, discrete: DiscreteDenoiser, s_max: f64, kind: &'static str) -> Self {
        Self { unet, discrete, s_max, kind }
    }

    /// The teacher timestep the network is run at.
    pub fn teacher_timestep(&self) -> f64 {
        self.s_max
    }
}

impl Backbone for TextUNetBackbone {
    fn feature_dim(&self) -> usize {
        self.unet.config().block_out_channels[0]
    }

    fn embedding_dim(&self) -> usize {
        self.unet.config().time_embed_dim()
    }

    fn time_features(&self, times: &Times, dtype: DType, device: &Device) -> boot_sdk::Result<Tensor> {
        let target = self.discrete.timesteps_of_lambda(&times.lambda);
        let t = self.discrete.timestep_input(&target, dtype, device)?;
        Ok(self.unet.time_features(&t)?.to_dtype(dtype)?)
    }

    fn w_features(&self, w: &Tensor) -> boot_sdk::Result<Tensor> {
        Ok(self.unet.time_features(w)?.to_dtype(w.dtype())?)
    }

    fn predict(&self, eps: &Tensor, cond: &Cond, extra: &Tensor) -> boot_sdk::Result<Tensor> {
        let n = eps.dim(0)?;
        predict_x0(&self.unet, &self.discrete, eps, &vec![self.s_max; n], text_states(cond, n, self.kind)?, Some(extra))
    }
}
