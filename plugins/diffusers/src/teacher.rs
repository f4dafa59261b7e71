//! The diffusers teacher: `[teacher] kind = "diffusers"`.
//!
//! ```toml
//! [teacher]
//! kind = "diffusers"
//! path = "ddpm-cifar10-32"      # the pipeline folder (unet/ and scheduler/), relative to the config
//! # variant = "fp16"            # reads unet/diffusion_pytorch_model.fp16.safetensors
//! # labels = "uniform"          # class-conditional nets (num_class_embeds): "uniform", "null" or [3, 7]
//! ```
//!
//! The folder loads as diffusers writes it: `unet/config.json` (UNet2DModel) and
//! `unet/diffusion_pytorch_model.safetensors` (f32, f16 or bf16 weights, converted to the run's dtype), and
//! `scheduler/scheduler_config.json` (`boot_kit::scheduler`). Time reaches the network through the plugin
//! kit's discrete-time denoiser: `t -> lambda_t ->` the fractional training timestep with that lambda; with
//! the teacher's native schedule (the default) time `t` is timestep `t (N - 1)` exactly. A null class label
//! (classifier-free guidance) is a zero class embedding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use boot_kit::{DiscreteDenoiser, Labels, SchedulerConfig};
use boot_models::diffusers::{UNet2DConfig, UNet2DModel};
use boot_sdk::candle::Tensor;
use boot_sdk::{BetaSchedule, Cond, CondSpec, InputError, NoiseSchedule, Teacher, TeacherConfig, TeacherContext, Times};
use serde::Deserialize;


/// `[teacher] kind = "diffusers"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffusersTeacherConfig {
    /// The pipeline folder (holding `unet/` and `scheduler/`), relative to the config.
    pub path: PathBuf,
    /// Weight file variant: `fp16` reads `diffusion_pytorch_model.fp16.safetensors`.
    #[serde(default)]
    pub variant: Option<String>,
    /// Label policy of class-conditional nets.
    #[serde(default)]
    pub labels: Labels,
}

impl DiffusersTeacherConfig {
    /// Builds the teacher (also usable without the typetag registry).
    pub fn build_teacher(&self, ctx: &TeacherContext) -> boot_sdk::Result<DiffusersTeacher> {
        let root = ctx.base_dir.join(&self.path);
        if !root.is_dir() {
            return Err(InputError::config("teacher.path", format!("{} is not a folder (a diffusers pipeline with unet/ and scheduler/)", root.display())).into());
        }
        let scheduler_path = root.join("scheduler").join("scheduler_config.json");
        let scheduler = SchedulerConfig::read(&scheduler_path)?;
        let schedule = Arc::new(scheduler.beta_schedule(&scheduler_path.display().to_string())?);
        let prediction = scheduler.prediction();
        let config_path = root.join("unet").join("config.json");
        let config = UNet2DConfig::from_json_file(&config_path)?;
        check_unet(&config, &scheduler, &config_path)?;
        let weights_path = root.join("unet").join(match &self.variant {
            Some(v) => format!("diffusion_pytorch_model.{v}.safetensors"),
            None => "diffusion_pytorch_model.safetensors".into(),
        });
        let weights = read_weights(&weights_path, ctx)?;
        let unet = boot_models::load_strict(&weights_path.display().to_string(), weights.clone(), ctx.dtype, &ctx.device, |vb| Ok(UNet2DModel::new(vb, &config)?))?;
        let num_classes = config.num_class_embeds;
        self.labels.check(num_classes)?;
        Ok(DiffusersTeacher { unet, discrete: DiscreteDenoiser::new(schedule, prediction, 1.0), weights: Arc::new(weights), labels: self.labels.clone(), num_classes, path: root })
    }
}

/// The UNet must be a pixel-space DDPM network whose output the scheduler's prediction type describes.
fn check_unet(config: &UNet2DConfig, scheduler: &SchedulerConfig, path: &Path) -> boot_sdk::Result<()> {
    let source = path.display().to_string();
    if config.time_embedding_type != "positional" {
        let msg = format!("\"{}\": only the positional (DDPM) time embedding is a discrete-time teacher", config.time_embedding_type);
        return Err(InputError::new(source, "time_embedding_type", msg).into());
    }
    let want = config.in_channels * if scheduler.learned_variance() { 2 } else { 1 };
    if config.out_channels != want {
        let msg = format!("{} for in_channels {} (variance_type {:?} wants {want})", config.out_channels, config.in_channels, scheduler.variance_type);
        return Err(InputError::new(source, "out_channels", msg).into());
    }
    if config.sample_size.is_none() {
        return Err(InputError::new(source, "sample_size", "missing: the teacher needs the image size").into());
    }
    if config.class_embed_type.is_some() {
        return Err(InputError::new(source, "class_embed_type", "only num_class_embeds (a label table) is supported").into());
    }
    Ok(())
}

/// The UNet's tensors, in the run's dtype on its device.
fn read_weights(path: &Path, ctx: &TeacherContext) -> boot_sdk::Result<HashMap<String, Tensor>> {
    let mut weights = HashMap::new();
    for (k, v) in boot_sdk::io::load_safetensors(path, &ctx.device)? {
        weights.insert(k, v.to_dtype(ctx.dtype)?);
    }
    Ok(weights)
}

boot_sdk::register! {
    teacher "diffusers" => "a pixel-space diffusers pipeline folder (UNet2DModel + DDPM/DDIM scheduler config; eps, v or sample prediction; optionally class-conditional)";
    impl TeacherConfig for DiffusersTeacherConfig {
        fn build(&self, ctx: &TeacherContext) -> boot_sdk::Result<Arc<dyn Teacher>> {
            Ok(Arc::new(self.build_teacher(ctx)?))
        }
    }
}

/// A diffusers UNet2DModel seen through the signal-prediction contract.
pub struct DiffusersTeacher {
    unet: UNet2DModel,
    discrete: DiscreteDenoiser,
    weights: Arc<HashMap<String, Tensor>>,
    labels: Labels,
    num_classes: Option<usize>,
    path: PathBuf,
}

impl std::fmt::Debug for DiffusersTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffusersTeacher")
            .field("path", &self.path)
            .field("prediction", &self.discrete.prediction())
            .field("num_classes", &self.num_classes)
            .field("tensors", &self.weights.len())
            .finish()
    }
}

impl DiffusersTeacher {
    /// The network.
    pub fn unet(&self) -> &UNet2DModel {
        &self.unet
    }

    /// Schedule, prediction target and timestep convention.
    pub fn discrete(&self) -> &DiscreteDenoiser {
        &self.discrete
    }

    /// The UNet's tensors by state-dict key, in the teacher's dtype and on its device.
    pub fn weights(&self) -> &HashMap<String, Tensor> {
        &self.weights
    }

    /// Real classes of a class-conditional net.
    pub fn num_classes(&self) -> Option<usize> {
        self.num_classes
    }
}

/// The class labels of a batch of `n` for a net with `num_classes` (`None`: unconditional): `cond`'s, all null
/// when it has none; a null label embeds to zeros. The UNet checks their count and range.
pub fn label_ids(cond: &Cond, n: usize, num_classes: Option<usize>) -> Option<Vec<Option<u32>>> {
    num_classes.map(|_| cond.class.clone().unwrap_or_else(|| vec![None; n]))
}

/// Signal prediction of `unet` for `x_t` at schedule `timesteps`, with `extra` added to its embedding.
pub fn predict_x0(unet: &UNet2DModel, discrete: &DiscreteDenoiser, x_t: &Tensor, timesteps: &[f64], labels: Option<&[Option<u32>]>, extra: Option<&Tensor>) -> boot_sdk::Result<Tensor> {
    let t = discrete.timestep_input(timesteps, boot_models::embedding_dtype(x_t.dtype()), x_t.device())?;
    let out = unet.forward(x_t, &t, labels, extra)?;
    discrete.to_x0(x_t, &out, timesteps)
}

impl Teacher for DiffusersTeacher {
    fn sample_shape(&self) -> [usize; 3] {
        // sample_size is checked when the teacher is built.
        let c = self.unet.config();
        let size = c.sample_size.unwrap_or_default();
        [c.in_channels, size, size]
    }

    fn cond_spec(&self) -> CondSpec {
        CondSpec { num_classes: self.num_classes, ..CondSpec::default() }
    }

    fn denoise(&self, x_t: &Tensor, times: &Times, cond: &Cond) -> boot_sdk::Result<Tensor> {
        let n = x_t.dim(0)?;
        if times.len() != n {
            anyhow::bail!("diffusers teacher: {} times for a batch of {n}", times.len());
        }
        let timesteps = self.discrete.timesteps_of_lambda(&times.lambda);
        let labels = label_ids(cond, n, self.num_classes);
        predict_x0(&self.unet, &self.discrete, x_t, &timesteps, labels.as_deref(), None)
    }

    fn sample_cond(&self, seeds: &[u64]) -> boot_sdk::Result<Cond> {
        Ok(self.labels.draw(seeds, self.num_classes))
    }

    fn native_schedule(&self) -> Option<Arc<dyn NoiseSchedule>> {
        let schedule: Arc<BetaSchedule> = self.discrete.schedule().clone();
        Some(schedule)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
