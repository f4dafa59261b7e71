//! The ADM teacher: `[teacher] kind = "adm"` (settings in [`crate::config`]).
//!
//! The framework's time reaches the network through `lambda_t = log(sigma_t / alpha_t)` and the plugin
//! kit's discrete-time denoiser (`kit/src/discrete.rs`): with the teacher's native schedule (the default
//! when the config has no `[schedule]`) time `t` is timestep `t (N - 1)` exactly.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use boot_sdk::candle::{DType, Device, Tensor};
use boot_models::adm::UNetModel;
use boot_sdk::{Cond, CondSpec, NoiseSchedule, Teacher, TeacherConfig, TeacherContext, Times};

use crate::checkpoint::read_checkpoint;
use crate::config::AdmTeacherConfig;
use crate::denoiser::{no_null_class, AdmDenoiser};

impl AdmTeacherConfig {
    /// Builds the teacher (also usable without the typetag registry): reads the checkpoint and loads it
    /// strictly, so a missing, unexpected or mis-shaped tensor is one input error naming it and the shapes.
    pub fn build_teacher(&self, ctx: &TeacherContext) -> boot_sdk::Result<AdmTeacher> {
        let ucfg = self.unet_config()?;
        let schedule = Arc::new(self.beta_schedule()?);
        self.check_labels()?;
        let path = ctx.base_dir.join(&self.checkpoint);
        // Moved to the run's device and dtype once: the network and the copy kept for the student share them.
        let mut weights = HashMap::new();
        for (k, v) in read_checkpoint(&path, self.state_dict_key.as_deref())? {
            weights.insert(k, v.to_device(&ctx.device)?.to_dtype(ctx.dtype)?);
        }
        let unet = boot_models::load_strict(&path.display().to_string(), weights.clone(), ctx.dtype, &ctx.device, |vb| Ok(UNetModel::new(vb, &ucfg)?))?;
        let num_classes = self.class_cond.then_some(self.num_classes);
        let denoiser = AdmDenoiser::new(unet, schedule, self.prediction.into(), self.null_class, num_classes, self.rescale_timesteps);
        Ok(AdmTeacher { denoiser, weights: Arc::new(weights), config: self.clone(), dtype: ctx.dtype, device: ctx.device.clone() })
    }
}

boot_sdk::register! {
    teacher "adm" => "guided-diffusion ADM UNet (eps or x0 prediction, class-conditional, 1000-step schedule) from a .pt or .safetensors checkpoint";
    impl TeacherConfig for AdmTeacherConfig {
        fn build(&self, ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            Ok(Arc::new(self.build_teacher(ctx)?))
        }
    }
}

/// A guided-diffusion network seen through the signal-prediction contract.
pub struct AdmTeacher {
    denoiser: AdmDenoiser,
    weights: Arc<HashMap<String, Tensor>>,
    config: AdmTeacherConfig,
    dtype: DType,
    device: Device,
}

impl std::fmt::Debug for AdmTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmTeacher")
            .field("checkpoint", &self.config.checkpoint)
            .field("prediction", &self.config.prediction)
            .field("null_class", &self.config.null_class)
            .field("tensors", &self.weights.len())
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl AdmTeacher {
    /// The network with its schedule and conventions.
    pub fn denoiser(&self) -> &AdmDenoiser {
        &self.denoiser
    }

    /// The checkpoint's tensors by state-dict key, in the teacher's dtype and on its device.
    pub fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// The config the teacher was built from.
    pub fn config(&self) -> &AdmTeacherConfig {
        &self.config
    }

    /// Compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Device.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

impl Teacher for AdmTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        self.denoiser.sample_shape()
    }

    fn cond_spec(&self) -> CondSpec {
        CondSpec { num_classes: self.denoiser.num_classes(), ..CondSpec::default() }
    }

    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        let n = x_t.dim(0)?;
        if times.len() != n {
            return Err(boot_sdk::anyhow::anyhow!("adm teacher: {} times for a batch of {n}", times.len()));
        }
        let timesteps = self.denoiser.discrete().timesteps_of_lambda(&times.lambda);
        let labels = self.denoiser.label_ids(cond, n)?;
        self.denoiser.predict_x0(x_t, &timesteps, labels.as_deref(), None)
    }

    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        Ok(self.config.labels.draw(seeds, self.denoiser.num_classes()))
    }

    fn null_cond(&self, cond: &Cond) -> boot_sdk::Result<Cond> {
        if !self.denoiser.has_null_class() {
            return Err(no_null_class());
        }
        Ok(cond.with_null_class())
    }

    fn native_schedule(&self) -> Option<Arc<dyn NoiseSchedule>> {
        let schedule: Arc<dyn NoiseSchedule> = self.denoiser.schedule().clone();
        Some(schedule)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
