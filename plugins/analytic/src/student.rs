//! The student `y(eps, t, cond, w)`: a small channels-last UNet trained from scratch, sized to train in minutes
//! on a few CPU cores. Config: `[student] kind = "analytic-unet"`.
//!
//! Layout: the image is cut into `patch x patch` pixels (space-to-depth), then a 3x3 conv, one UNet level per
//! entry of `channel_mult` (residual blocks; a 2x2 patch-merging down step between levels; the decoder adds the
//! level's skip, half the convolution work of concatenating it), a global block at the bottleneck (an MLP of
//! the flattened features and of the flattened noise itself, since choosing the mixture mode is a global
//! decision; the direct noise path made it learn modes faster), and a 3x3 conv back to `patch^2 C` values per
//! position. The embedding that every residual block adds is `MLP(sin(t)) + class_table[c] + MLP_0(sin(w))`,
//! the last one zero-initialised so a fresh w-conditioned student ignores `w`.

use boot_sdk::candle::{DType, Device, Module, Tensor};
use boot_sdk::candle_nn::{embedding, Embedding, VarBuilder};
use boot_sdk::{Cond, InputError, Student, StudentConfig, StudentContext, Times};
use serde::Deserialize;

use crate::blocks::{depth_to_space, sinusoidal, space_to_depth, Dense, ResBlock};
use crate::conv::Conv3x3;
use crate::norm::{GroupNormSilu, GROUPS};

/// `w` is embedded as `sin/cos(W_SCALE * w * f_i)`, so guidance weights up to ~10 span the same range as `t`.
const W_SCALE: f64 = 100.0;

/// `[student] kind = "analytic-unet"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticUnetConfig {
    /// Channels of the first level (default 32); a multiple of 8.
    pub channels: usize,
    /// Channel multiplier of each level (default `[1, 2]`: one down/up step).
    pub channel_mult: Vec<usize>,
    /// Residual blocks per level in the encoder and in the decoder (default 1).
    pub num_res_blocks: usize,
    /// Width of the time/class/w embedding (default 128); even.
    pub emb_dim: usize,
    /// Hidden width of the global bottleneck MLP (default 256).
    pub global_dim: usize,
    /// Side of the pixel patches folded into channels at the input (default 2).
    pub patch: usize,
    /// `t` is embedded as `sin/cos(time_scale * t * f_i)`; 1000 (the default) is the usual discrete-time
    /// denoiser's range. Smaller values make the embedding smoother in `t`, which lets what the student learns
    /// at one time carry over to its neighbours, the path along which bootstrapping moves information.
    pub time_scale: f64,
}

impl Default for AnalyticUnetConfig {
    fn default() -> Self {
        Self { channels: 32, channel_mult: vec![1, 2], num_res_blocks: 1, emb_dim: 128, global_dim: 256, patch: 2, time_scale: 1000.0 }
    }
}

impl AnalyticUnetConfig {
    /// Checks the config against the image shape `[C, H, W]`.
    fn validate(&self, shape: [usize; 3]) -> boot_sdk::Result<()> {
        let err = |key: &str, message: String| -> boot_sdk::Result<()> { Err(InputError::config(format!("student.{key}"), message).into()) };
        if self.channel_mult.is_empty() || self.channel_mult.contains(&0) {
            return err("channel_mult", format!("needs one or more positive multipliers, found {:?}", self.channel_mult));
        }
        if self.channels == 0 || self.channel_mult.iter().any(|m| m.checked_mul(self.channels).is_none_or(|c| !c.is_multiple_of(GROUPS))) {
            return err("channels", format!("{} times each of channel_mult must be a positive multiple of {GROUPS}", self.channels));
        }
        if self.num_res_blocks == 0 {
            return err("num_res_blocks", "must be at least 1".into());
        }
        if self.emb_dim < 2 || !self.emb_dim.is_multiple_of(2) {
            return err("emb_dim", format!("must be even and at least 2, found {}", self.emb_dim));
        }
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return err("time_scale", format!("must be a positive number, found {}", self.time_scale));
        }
        if self.global_dim == 0 {
            return err("global_dim", "must be at least 1".into());
        }
        let step = 1usize.checked_shl(self.channel_mult.len() as u32 - 1).and_then(|f| f.checked_mul(self.patch));
        if !step.is_some_and(|step| step > 0 && shape[1].is_multiple_of(step) && shape[2].is_multiple_of(step)) {
            return err(
                "patch",
                format!("images {}x{} must split into patches of {} and then halve {} times", shape[1], shape[2], self.patch, self.channel_mult.len() - 1),
            );
        }
        Ok(())
    }
}

boot_sdk::register! {
    student "analytic-unet" => "small channels-last UNet with a global bottleneck MLP, trained from scratch, conditioned on t, class and w";
    impl StudentConfig for AnalyticUnetConfig {
        fn build(&self, ctx: &StudentContext) -> boot_sdk::Result<Box<dyn Student>> {
            Ok(Box::new(AnalyticUnet::new(self, ctx)?))
        }
    }
}

/// `lin2(silu(lin1(x)))`.
#[derive(Debug, Clone)]
struct Mlp {
    lin1: Dense,
    lin2: Dense,
}

impl Mlp {
    fn new(dim: usize, zero_out: bool, vb: VarBuilder) -> boot_sdk::Result<Self> {
        Ok(Self { lin1: Dense::new(dim, dim, false, vb.pp("lin1"))?, lin2: Dense::new(dim, dim, zero_out, vb.pp("lin2"))? })
    }

    fn forward(&self, x: &Tensor) -> boot_sdk::Result<Tensor> {
        self.lin2.forward(&self.lin1.forward(x)?.silu()?)
    }
}

/// The bottleneck's global mixing:
/// `h + lin_out(silu(lin_in(flatten(silu(norm(h)))) + lin_eps(flatten(eps)) + emb_proj(emb)))`, `lin_out`
/// zero-initialised.
#[derive(Debug, Clone)]
struct GlobalBlock {
    norm: GroupNormSilu,
    lin_in: Dense,
    lin_eps: Dense,
    emb_proj: Dense,
    lin_out: Dense,
}

impl GlobalBlock {
    fn forward(&self, h: &Tensor, eps: &Tensor, emb: &Tensor) -> boot_sdk::Result<Tensor> {
        let b = h.dim(0)?;
        let flat = self.norm.forward(h, None)?.reshape((b, ()))?;
        let g = (self.lin_in.forward(&flat)? + self.lin_eps.forward(&eps.reshape((b, ()))?)?)?;
        let g = (g + self.emb_proj.forward(emb)?)?.silu()?;
        Ok((h + self.lin_out.forward(&g)?.reshape(h.shape())?)?)
    }
}

/// One UNet level: its residual blocks, and its resolution change: in the encoder a patch-merging step down
/// after the blocks, in the decoder a step up (then the level's skip is added) before them; none at the
/// bottom level.
#[derive(Debug, Clone)]
struct Level {
    blocks: Vec<ResBlock>,
    resample: Option<Dense>,
}

/// The `analytic-unet` student.
#[derive(Debug, Clone)]
pub struct AnalyticUnet {
    shape: [usize; 3],
    patch: usize,
    emb_dim: usize,
    time_scale: f64,
    dtype: DType,
    device: Device,
    time_embed: Mlp,
    /// Class table with a last row for the null label, when the teacher is class-conditional.
    class_embed: Option<(Embedding, u32)>,
    w_embed: Option<Mlp>,
    conv_in: Conv3x3,
    down: Vec<Level>,
    global: GlobalBlock,
    /// Decoder levels, deepest first.
    up: Vec<Level>,
    out_norm: GroupNormSilu,
    conv_out: Conv3x3,
}

impl AnalyticUnet {
    /// Builds the student for `ctx.teacher`'s image shape and conditioning, with parameters from `ctx.vb`.
    pub fn new(cfg: &AnalyticUnetConfig, ctx: &StudentContext) -> boot_sdk::Result<Self> {
        let shape = ctx.teacher.sample_shape();
        cfg.validate(shape)?;
        let vb = &ctx.vb;
        let e = cfg.emb_dim;
        let ch: Vec<usize> = cfg.channel_mult.iter().map(|m| m * cfg.channels).collect();
        let levels = ch.len();
        let class_embed = match ctx.teacher.cond_spec().num_classes {
            Some(n) => Some((embedding(n + 1, e, vb.pp("class_embed"))?, n as u32)),
            None => None,
        };
        let w_embed = if ctx.w_conditioned { Some(Mlp::new(e, true, vb.pp("w_embed"))?) } else { None };
        let patch_channels = cfg.patch * cfg.patch * shape[0];
        let mut down = Vec::with_capacity(levels);
        for (i, &c) in ch.iter().enumerate() {
            let vb = vb.pp(format!("down.{i}"));
            let blocks = (0..cfg.num_res_blocks).map(|j| ResBlock::new(c, e, vb.pp(format!("res.{j}")))).collect::<boot_sdk::Result<_>>()?;
            let resample = if i + 1 < levels { Some(Dense::new(4 * c, ch[i + 1], false, vb.pp("downsample"))?) } else { None };
            down.push(Level { blocks, resample });
        }
        let bottom = ch[levels - 1];
        let side = ((shape[1] / cfg.patch) >> (levels - 1)) * ((shape[2] / cfg.patch) >> (levels - 1));
        let global = GlobalBlock {
            norm: GroupNormSilu::new(bottom, vb.pp("global.norm"))?,
            lin_in: Dense::new(side * bottom, cfg.global_dim, false, vb.pp("global.lin_in"))?,
            lin_eps: Dense::new(shape.iter().product(), cfg.global_dim, false, vb.pp("global.lin_eps"))?,
            emb_proj: Dense::new(e, cfg.global_dim, false, vb.pp("global.emb_proj"))?,
            lin_out: Dense::new(cfg.global_dim, side * bottom, true, vb.pp("global.lin_out"))?,
        };
        let mut up = Vec::with_capacity(levels);
        for (i, &c) in ch.iter().enumerate().rev() {
            let vb = vb.pp(format!("up.{i}"));
            let blocks = (0..cfg.num_res_blocks).map(|j| ResBlock::new(c, e, vb.pp(format!("res.{j}")))).collect::<boot_sdk::Result<_>>()?;
            let resample = if i + 1 < levels { Some(Dense::new(ch[i + 1], 4 * c, false, vb.pp("upsample"))?) } else { None };
            up.push(Level { blocks, resample });
        }
        Ok(Self {
            shape,
            patch: cfg.patch,
            emb_dim: e,
            time_scale: cfg.time_scale,
            dtype: vb.dtype(),
            device: ctx.device.clone(),
            time_embed: Mlp::new(e, false, vb.pp("time_embed"))?,
            class_embed,
            w_embed,
            conv_in: Conv3x3::new(patch_channels, ch[0], false, vb.pp("conv_in"))?,
            down,
            global,
            up,
            out_norm: GroupNormSilu::new(ch[0], vb.pp("out.norm"))?,
            conv_out: Conv3x3::new(ch[0], patch_channels, false, vb.pp("out.conv"))?,
        })
    }

    /// `[B, emb_dim]` embedding of the target times, class labels and guidance weights.
    fn embedding(&self, times: &Times, cond: &Cond, w: Option<&[f64]>, b: usize) -> boot_sdk::Result<Tensor> {
        anyhow::ensure!(times.len() == b, "analytic-unet: {} times for a batch of {b}", times.len());
        let mut emb = self.time_embed.forward(&sinusoidal(&times.t, self.time_scale, self.emb_dim, &self.device, self.dtype)?)?;
        match (&self.class_embed, &cond.class) {
            (Some((table, null)), labels) => {
                let ids = match labels {
                    None => vec![*null; b],
                    Some(l) => {
                        anyhow::ensure!(l.len() == b, "analytic-unet: {} class labels for a batch of {b}", l.len());
                        l.iter()
                            .map(|c| match *c {
                                None => Ok(*null),
                                Some(c) if c < *null => Ok(c),
                                Some(c) => Err(anyhow::anyhow!("analytic-unet: class label {c} out of range (0..{null})")),
                            })
                            .collect::<boot_sdk::Result<_>>()?
                    }
                };
                emb = (emb + table.forward(&Tensor::from_vec(ids, b, &self.device)?)?)?;
            }
            (None, Some(l)) if l.iter().any(Option::is_some) => {
                anyhow::bail!("analytic-unet: the teacher is unconditional but the batch has class labels")
            }
            (None, _) => {}
        }
        if let Some(mlp) = &self.w_embed {
            let w = w.ok_or_else(|| anyhow::anyhow!("analytic-unet: the student is conditioned on w but got none"))?;
            anyhow::ensure!(w.len() == b, "analytic-unet: {} guidance weights for a batch of {b}", w.len());
            emb = (emb + mlp.forward(&sinusoidal(w, W_SCALE, self.emb_dim, &self.device, self.dtype)?)?)?;
        }
        Ok(emb)
    }
}

impl Student for AnalyticUnet {
    fn forward(&self, eps: &Tensor, times: &Times, cond: &Cond, w: Option<&[f64]>) -> boot_sdk::Result<Tensor> {
        let dims = eps.dims();
        anyhow::ensure!(dims.len() == 4 && dims[1..] == self.shape, "analytic-unet: expected noise [B, {:?}], got {dims:?}", self.shape);
        let b = dims[0];
        let emb = self.embedding(times, cond, w, b)?.silu()?;
        let x = eps.to_device(&self.device)?.to_dtype(self.dtype)?.permute((0, 2, 3, 1))?;
        let x = space_to_depth(&x, self.patch)?;
        let mut h = self.conv_in.forward(&x)?;
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            for block in &level.blocks {
                h = block.forward(&h, &emb)?;
            }
            if let Some(down) = &level.resample {
                skips.push(h.clone());
                h = down.forward(&space_to_depth(&h, 2)?)?;
            }
        }
        h = self.global.forward(&h, &x, &emb)?;
        for level in &self.up {
            if let Some(up) = &level.resample {
                let skip = skips.pop().ok_or_else(|| anyhow::anyhow!("analytic-unet: more up steps than down steps"))?;
                h = (depth_to_space(&up.forward(&h)?, 2)? + skip)?;
            }
            for block in &level.blocks {
                h = block.forward(&h, &emb)?;
            }
        }
        let out = self.conv_out.forward(&self.out_norm.forward(&h, None)?)?;
        Ok(depth_to_space(&out, self.patch)?.permute((0, 3, 1, 2))?.contiguous()?.to_dtype(eps.dtype())?.to_device(eps.device())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{teacher_ctx, Cosine};
    use boot_sdk::candle_nn::VarMap;
    use boot_sdk::{Teacher, TeacherConfig};
    use std::sync::Arc;

    fn teacher() -> boot_sdk::Result<Arc<dyn Teacher>> {
        let cfg: Box<dyn TeacherConfig> = boot_sdk::serde_json::from_str(r#"{"kind": "analytic"}"#)?;
        cfg.build(&teacher_ctx(std::env::temp_dir()))
    }

    fn student(json: &str, varmap: &VarMap, w_conditioned: bool) -> boot_sdk::Result<Box<dyn Student>> {
        let teacher = teacher()?;
        let cfg: Box<dyn StudentConfig> = boot_sdk::serde_json::from_str(json)?;
        let net = cfg.build(&StudentContext {
            vb: VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu),
            varmap,
            teacher: teacher.as_ref(),
            schedule: &crate::testing::Cosine,
            w_conditioned,
            t_min: 0.0,
            t_max: 0.999,
            device: Device::Cpu,
            base_dir: std::env::temp_dir(),
        })?;
        Ok(net)
    }

    /// Sets every variable whose name does not start with `keep` to fresh noise.
    fn perturb(varmap: &VarMap, keep: Option<&str>) -> boot_sdk::Result<()> {
        let vars = varmap.data().lock().map_err(|_| anyhow::anyhow!("poisoned varmap"))?;
        for (name, var) in vars.iter().filter(|(n, _)| keep.is_none_or(|k| !n.starts_with(k))) {
            var.set(&Tensor::randn(0f32, 0.2, var.shape(), &Device::Cpu).map_err(|e| anyhow::anyhow!("{name}: {e}"))?)?;
        }
        Ok(())
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> boot_sdk::Result<f32> {
        Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
    }

    #[test]
    fn output_has_the_image_shape_and_fresh_w_is_ignored() -> boot_sdk::Result<()> {
        let varmap = VarMap::new();
        let net = student(r#"{"kind": "analytic-unet"}"#, &varmap, true)?;
        perturb(&varmap, Some("w_embed.lin2"))?;
        let eps = Tensor::randn(0f32, 1.0, (4, 3, 16, 16), &Device::Cpu)?;
        let times = Times::new(&Cosine, vec![0.1, 0.4, 0.7, 0.99]);
        let cond = Cond::classes(vec![Some(0), Some(3), None, Some(1)]);
        let a = net.forward(&eps, &times, &cond, Some(&[1.0, 2.0, 3.0, 4.0]))?;
        assert_eq!(a.dims(), [4, 3, 16, 16]);
        let b = net.forward(&eps, &times, &cond, Some(&[7.0, 0.0, 5.5, 1.5]))?;
        assert_eq!(max_diff(&a, &b)?, 0.0);
        // Wiring: once the zero-initialised w layer moves, w, the class and t all matter.
        perturb(&varmap, None)?;
        let a = net.forward(&eps, &times, &cond, Some(&[1.0, 2.0, 3.0, 4.0]))?;
        assert!(max_diff(&a, &net.forward(&eps, &times, &cond, Some(&[7.0, 0.0, 5.5, 1.5]))?)? > 1e-4);
        assert!(max_diff(&a, &net.forward(&eps, &times, &cond.with_null_class(), Some(&[1.0, 2.0, 3.0, 4.0]))?)? > 1e-4);
        let later = Times::new(&Cosine, vec![0.2, 0.5, 0.8, 0.9]);
        assert!(max_diff(&a, &net.forward(&eps, &later, &cond, Some(&[1.0, 2.0, 3.0, 4.0]))?)? > 1e-4);
        assert!(net.forward(&eps, &times, &cond, None).is_err(), "a w-conditioned student needs w");
        Ok(())
    }

    #[test]
    fn every_parameter_gets_a_gradient_after_one_perturbation() -> boot_sdk::Result<()> {
        let varmap = VarMap::new();
        let net = student(r#"{"kind": "analytic-unet", "channels": 16, "num_res_blocks": 2}"#, &varmap, true)?;
        perturb(&varmap, None)?;
        let eps = Tensor::randn(0f32, 1.0, (3, 3, 16, 16), &Device::Cpu)?;
        let times = Times::new(&Cosine, vec![0.1, 0.5, 0.9]);
        let y = net.forward(&eps, &times, &Cond::classes(vec![Some(0), Some(1), None]), Some(&[1.0, 2.0, 3.0]))?;
        let grads = y.sqr()?.mean_all()?.backward()?;
        let vars = varmap.data().lock().map_err(|_| anyhow::anyhow!("poisoned varmap"))?;
        for (name, var) in vars.iter() {
            let g = grads.get(var.as_tensor()).ok_or_else(|| anyhow::anyhow!("{name}: no gradient"))?;
            assert!(g.abs()?.max_all()?.to_scalar::<f32>()? > 0.0, "{name}: zero gradient");
        }
        Ok(())
    }

    #[test]
    fn config_is_checked_against_the_image() -> boot_sdk::Result<()> {
        let varmap = VarMap::new();
        for (json, key) in [
            (r#"{"kind": "analytic-unet", "channels": 12}"#, "student.channels"),
            (r#"{"kind": "analytic-unet", "channel_mult": [1, 2, 2, 2, 2]}"#, "student.patch"),
            (r#"{"kind": "analytic-unet", "emb_dim": 7}"#, "student.emb_dim"),
            (r#"{"kind": "analytic-unet", "channel_mult": []}"#, "student.channel_mult"),
        ] {
            let err = student(json, &varmap, false).err().ok_or_else(|| anyhow::anyhow!("{json} must fail"))?;
            assert!(err.downcast_ref::<InputError>().is_some() && err.to_string().contains(key), "{err}");
        }
        assert!(boot_sdk::serde_json::from_str::<Box<dyn StudentConfig>>(r#"{"kind": "analytic-unet", "depth": 2}"#).is_err());
        Ok(())
    }

    /// Step time of the default student at batch 64: `cargo test --release -p boot-plugin-analytic -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn step_time_at_batch_64() -> boot_sdk::Result<()> {
        let varmap = VarMap::new();
        let net = student(r#"{"kind": "analytic-unet"}"#, &varmap, true)?;
        let b = 64;
        let eps = Tensor::randn(0f32, 1.0, (b, 3, 16, 16), &Device::Cpu)?;
        let times = Times::new(&Cosine, (0..b).map(|i| i as f64 / b as f64).collect());
        let cond = Cond::classes((0..b).map(|i| Some(i as u32 % 4)).collect());
        let w: Vec<f64> = (0..b).map(|i| 1.0 + i as f64 / 16.0).collect();
        let time = |f: &mut dyn FnMut() -> boot_sdk::Result<()>| -> boot_sdk::Result<f64> {
            f()?;
            let mut ms = Vec::new();
            for _ in 0..15 {
                let start = std::time::Instant::now();
                f()?;
                ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
            ms.sort_by(f64::total_cmp);
            Ok(ms[ms.len() / 2])
        };
        let fwd = time(&mut || net.forward(&eps, &times, &cond, Some(&w)).map(|_| ()))?;
        let fwd_bwd = time(&mut || {
            net.forward(&eps, &times, &cond, Some(&w))?.sqr()?.mean_all()?.backward()?;
            Ok(())
        })?;
        let params: usize = varmap.all_vars().iter().map(|v| v.elem_count()).sum();
        println!("analytic-unet, batch {b}, {params} parameters: forward {fwd:.1} ms, forward+backward {fwd_bwd:.1} ms (median of 15)");
        Ok(())
    }

    /// Learnability of the map this student is distilled to: regress the teacher's ODE endpoint (DDIM, 100
    /// steps) from fresh noise and classes each step, and compare modes on held-out noise. Run by hand:
    /// `cargo test --release -p boot-plugin-analytic -- --ignored --nocapture learns`.
    #[test]
    #[ignore = "training, run by hand"]
    fn learns_the_ode_endpoint_map() -> boot_sdk::Result<()> {
        use boot_sdk::candle_nn::{AdamW, Optimizer, ParamsAdamW};
        let teacher = teacher()?;
        let shape = [3usize, 16, 16];
        let t_min = 0.002;
        // Teacher ODE endpoints y(eps, t_min) for `n` noises drawn from `seed`.
        let endpoints = |n: usize, seed: u64| -> boot_sdk::Result<(Tensor, Cond, Tensor)> {
            let seeds: Vec<u64> = (0..n as u64).map(|i| seed * 1_000_003 + i).collect();
            let eps = boot_sdk::rng::normal(&seeds, &shape, &Device::Cpu)?;
            let cond = teacher.sample_cond(&seeds)?;
            let steps = 100;
            let mut x = eps.clone();
            for i in 0..steps {
                let (t, s) = (1.0 - (1.0 - t_min) * i as f64 / steps as f64, 1.0 - (1.0 - t_min) * (i + 1) as f64 / steps as f64);
                let (tt, ss) = (Times::constant(&Cosine, t, n), Times::constant(&Cosine, s, n));
                let x0 = teacher.denoise(&x, &tt, &cond)?;
                let e = ((&x - (&x0 * tt.alpha[0])?)? / tt.sigma[0])?;
                x = ((x0 * ss.alpha[0])? + (e * ss.sigma[0])?)?;
            }
            let tm = Times::constant(&Cosine, t_min, n);
            let y = ((x - (&eps * tm.sigma[0])?)? / tm.alpha[0])?;
            Ok((eps, cond, y))
        };
        let (eps_test, cond_test, y_test) = endpoints(512, 0)?;
        let varmap = VarMap::new();
        let net = student(r#"{"kind": "analytic-unet"}"#, &varmap, false)?;
        let mut opt = AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 2e-3, weight_decay: 0.0, ..Default::default() })?;
        let density = teacher.exact_density().ok_or_else(|| anyhow::anyhow!("exact density"))?;
        let modes_test = density.mode_of(&y_test)?;
        let b = 64;
        let start = std::time::Instant::now();
        let steps = 2000;
        for step in 0..=steps {
            let (eps, cond, y) = endpoints(b, step as u64 + 1)?;
            let pred = net.forward(&eps, &Times::constant(&Cosine, t_min, b), &cond, None)?;
            let loss = (pred - y)?.sqr()?.mean_all()?;
            opt.backward_step(&loss)?;
            if step % (steps / 8) == 0 {
                let pred = net.forward(&eps_test, &Times::constant(&Cosine, t_min, 512), &cond_test, None)?;
                let mse = (&pred - &y_test)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
                let hits = density.mode_of(&pred)?.iter().zip(&modes_test).filter(|(a, b)| a.is_some() && a == b).count();
                println!(
                    "step {step}: train loss {:.4}, held-out mse {mse:.4}, mode agreement {:.1}% ({:.0} s)",
                    loss.to_scalar::<f32>()?,
                    100.0 * hits as f64 / 512.0,
                    start.elapsed().as_secs_f64()
                );
            }
        }
        Ok(())
    }
}
