//! The subcommands.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use boot_core::checkpoint::{self, Checkpoint};
use boot_core::components::{Components, RunContext};
use boot_core::config::RunConfig;
use boot_core::eval::evaluate;
use boot_core::fd::{network_path, write_stats, FdEval, FdFeatures};
use boot_core::gaussian_fd::MomentAccumulator;
use boot_core::image_data::{pad_to, read_images};
use boot_core::generate::{generate, sample_inputs};
use boot_core::grid::save_grid;
use boot_core::samplers::SamplerKind;
use boot_core::train::Start;
use boot_sdk::candle::Tensor;
use boot_sdk::io::{load_safetensors, save_safetensors};
use boot_sdk::InputError;

use crate::cli::{Cli, Command, EvalArgs, FdStatsArgs, InspectArgs, PluginsArgs, SampleArgs, TrainArgs};
use crate::config_loader::{load_run, name_source, RawConfig};
use crate::plugin_loader::{builtins, discover, load, search_dirs};
use crate::stdout;

/// Runs the command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // Checked before any work, so a typo is a one-line input error rather than a silent default.
    let cudnn = std::env::var("BOOT_CUDNN").ok();
    if let Err(e) = boot_sdk::ops::CudnnMode::parse(cudnn.as_deref()) {
        return Err(InputError::new("environment", "BOOT_CUDNN", e).into());
    }
    match (cli.command, cli.train) {
        (Some(Command::Train(a)), _) | (None, Some(a)) => with_config(&a.config.clone(), |cfg, ctx| train(a, cfg, ctx)),
        (Some(Command::Sample(a)), _) => with_config(&a.config.clone(), |cfg, ctx| sample(a, cfg, ctx)),
        (Some(Command::Eval(a)), _) => with_config(&a.config.clone(), |cfg, ctx| eval(a, cfg, ctx)),
        (Some(Command::FdStats(a)), _) => with_config(&a.config.clone(), |cfg, ctx| fd_stats(a, cfg, ctx)),
        (Some(Command::Plugins(a)), _) => plugins(a),
        (Some(Command::Inspect(a)), _) => inspect(a),
        (None, None) => anyhow::bail!("nothing to do: give `--config run.toml` to train, or a subcommand (see --help)"),
    }
}

/// Reads the config, loads its plugins, types it, runs `f`; input errors about the config get its name.
fn with_config(path: &Path, f: impl FnOnce(RunConfig, RunContext) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let name = path.display().to_string();
    RawConfig::read(path)
        .and_then(|raw| load_run(raw, &[]))
        .and_then(|(cfg, ctx, _)| {
            set_threads(cfg.run.threads);
            f(cfg, ctx)
        })
        .map_err(|e| name_source(e, &name))
}

/// Applies `run.threads` before any tensor work starts the thread pools (an explicit `RAYON_NUM_THREADS`
/// in the environment wins).
fn set_threads(threads: usize) {
    if threads > 0 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Still single-threaded here: no other thread reads the environment.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

fn train(a: TrainArgs, cfg: RunConfig, ctx: RunContext) -> anyhow::Result<()> {
    let c = Components::build(&cfg, &ctx)?;
    let start = match (a.resume, a.overwrite) {
        (true, _) => Start::Resume,
        (false, true) => Start::Overwrite,
        (false, false) => Start::Fresh,
    };
    // Loaded before training, so a missing statistics or network file is reported before any work.
    let fd = if cfg.eval.after_training { FdEval::from_config(&cfg.eval, &ctx.base_dir, &c.device)? } else { None };
    let summary = boot_core::train::train(&cfg, &c, start)?;
    tracing::info!(steps = summary.steps, from = summary.start_step, last_loss = summary.losses.last().copied(), "training finished");
    if cfg.eval.after_training {
        let student = if cfg.eval.use_ema { &c.ema } else { &c.student };
        let report = evaluate(&cfg, &c, Some(student.net.as_ref()), fd.as_ref(), &cfg.run.out_dir.join("eval.json"))?;
        stdout::line(boot_sdk::serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// Loads the chosen (or newest) checkpoint's EMA or live weights into the matching student.
fn restore_student<'c>(cfg: &RunConfig, c: &'c Components, checkpoint: Option<PathBuf>, live: bool) -> anyhow::Result<&'c dyn boot_sdk::Student> {
    let path = match checkpoint.or_else(|| checkpoint::latest(&cfg.run.out_dir)) {
        Some(p) => p,
        None => {
            let msg = format!("no checkpoint in {}; train first or pass --checkpoint", checkpoint::dir(&cfg.run.out_dir).display());
            return Err(InputError::config("run.out_dir", msg).into());
        }
    };
    let ck = Checkpoint::read(&path, &c.device)?;
    let use_ema = !live && cfg.eval.use_ema;
    let (prefix, target) = if use_ema { ("ema", &c.ema) } else { ("student", &c.student) };
    ck.restore_vars(prefix, &target.vars)?;
    tracing::info!(checkpoint = %path.display(), weights = prefix, step = ck.step()?, "loaded student");
    Ok(target.net.as_ref())
}

fn eval(a: EvalArgs, cfg: RunConfig, ctx: RunContext) -> anyhow::Result<()> {
    let c = Components::build(&cfg, &ctx)?;
    let fd = FdEval::from_config(&cfg.eval, &ctx.base_dir, &c.device)?;
    let student = if a.teacher_only { None } else { Some(restore_student(&cfg, &c, a.checkpoint, a.live)?) };
    let out = a.out.unwrap_or_else(|| cfg.run.out_dir.join("eval.json"));
    let report = evaluate(&cfg, &c, student, fd.as_ref(), &out)?;
    stdout::line(boot_sdk::serde_json::to_string_pretty(&report)?)?;
    Ok(())
}

/// Fits a Gaussian to the FD features of a real image set, the images centred in the teacher's decoded
/// pixel size with a black (-1) border when smaller (Fashion-MNIST's 28x28 in a 32x32 teacher's samples),
/// so real images and samples go through the same pipeline.
fn fd_stats(a: FdStatsArgs, cfg: RunConfig, ctx: RunContext) -> anyhow::Result<()> {
    let c = Components::build(&cfg, &ctx)?;
    let features = FdFeatures::load(&network_path(&cfg.eval, &ctx.base_dir)?, &c.device)?;
    let images = read_images(&a.data, a.key.as_deref())?;
    let [ch, h, w] = c.sample_shape();
    let probe = c.teacher.decode(&Tensor::zeros((1, ch, h, w), boot_sdk::candle::DType::F32, &c.device)?)?;
    let (_, pc, ph, pw) = probe.dims4()?;
    let (n, ic, ih, iw) = images.dims4()?;
    if ic != pc || ih > ph || iw > pw {
        let msg = format!("images {ic}x{ih}x{iw} do not fit the teacher's {pc}x{ph}x{pw} samples (same channels, at most as large)");
        return Err(InputError::new(a.data.display().to_string(), a.key.unwrap_or_default(), msg).into());
    }
    let images = pad_to(&images, ph, pw)?;
    let mut moments = MomentAccumulator::default();
    let batch = cfg.eval.batch_size.max(1);
    for first in (0..n).step_by(batch) {
        let x = images.narrow(0, first, batch.min(n - first))?.to_device(&c.device)?;
        moments.add(&features.features(&x)?)?;
        tracing::info!(done = first + x.dim(0)?, of = n, "fd-stats");
    }
    let fit = moments.finish().map_err(|e| InputError::new(a.data.display().to_string(), "", e.to_string()))?;
    write_stats(&a.out, &fit, &features, [pc, ph, pw])?;
    stdout::line(format!("wrote {} ({} images, {pc}x{ph}x{pw})", a.out.display(), fit.count))?;
    Ok(())
}

/// Reads a noise file: one tensor (or the one named `noise`) of shape `[N, C, H, W]` matching the teacher.
fn read_noise(path: &Path, shape: [usize; 3], device: &boot_sdk::candle::Device) -> anyhow::Result<Tensor> {
    let shown = path.display().to_string();
    let mut tensors = load_safetensors(path, device)?;
    let (name, t) = match tensors.len() {
        1 => tensors.drain().next().context("one tensor")?,
        _ => ("noise".to_string(), tensors.remove("noise").ok_or_else(|| InputError::new(&shown, "tensor `noise`", "missing (the file holds several tensors)"))?),
    };
    let dims = t.dims().to_vec();
    if dims.len() != 4 || dims[1..] != shape {
        let msg = format!("expected shape [N, {}, {}, {}], found {dims:?}", shape[0], shape[1], shape[2]);
        return Err(InputError::new(&shown, format!("tensor `{name}`"), msg).into());
    }
    Ok(t.to_dtype(boot_sdk::candle::DType::F32)?)
}

fn sample(a: SampleArgs, cfg: RunConfig, ctx: RunContext) -> anyhow::Result<()> {
    let kind: SamplerKind = a.sampler.parse().map_err(|e: String| InputError::new("command line", "--sampler", e))?;
    let c = Components::build(&cfg, &ctx)?;
    let noise = a.noise.as_deref().map(|p| read_noise(p, c.sample_shape(), &c.device)).transpose()?;
    let prompts = sample_prompts(&a)?;
    let student = match kind {
        SamplerKind::Student => restore_student(&cfg, &c, a.checkpoint, a.live)?,
        _ => c.student.net.as_ref(),
    };
    let per_prompt = prompts.iter().flat_map(|p| std::iter::repeat_n(p.clone(), a.count)).collect::<Vec<_>>();
    let n = match (&noise, prompts.is_empty()) {
        (Some(t), true) => t.dim(0)?,
        (Some(t), false) if t.dim(0)? != per_prompt.len() => {
            let msg = format!("{} noises for {} prompts x --count {}", t.dim(0)?, prompts.len(), a.count);
            return Err(InputError::new("command line", "--noise", msg).into());
        }
        (None, true) => a.count,
        _ => per_prompt.len(),
    };
    let mut inputs = sample_inputs(&c, cfg.run.seed, 0, n, noise)?;
    if !prompts.is_empty() {
        inputs.cond = c.teacher.prompt_cond(&per_prompt)?;
    }
    let samples = generate(&c, student, kind, &inputs, cfg.train.t_max, cfg.train.t_min)?;
    let out = a.out.unwrap_or_else(|| cfg.run.out_dir.join("samples").join(format!("{kind}.safetensors")));
    let tensors = [("samples".to_string(), samples.clone()), ("noise".to_string(), inputs.eps.clone())].into_iter().collect();
    let mut meta: HashMap<String, String> = [("sampler".to_string(), kind.to_string())].into_iter().collect();
    if !prompts.is_empty() {
        meta.insert("prompts".into(), boot_sdk::serde_json::to_string(&per_prompt)?);
    }
    save_safetensors(&out, &tensors, Some(meta))?;
    let pixels = c.teacher.decode(&samples)?;
    let png = out.with_extension("png");
    let columns = if prompts.is_empty() { (n as f64).sqrt().ceil() as usize } else { a.count };
    save_grid(&png, &pixels, columns)?;
    if !prompts.is_empty() {
        let stem = out.with_extension("");
        for i in 0..n {
            save_grid(&PathBuf::from(format!("{}-{i:03}.png", stem.display())), &pixels.narrow(0, i, 1)?, 1)?;
        }
        stdout::line(format!("wrote {n} images {}-NNN.png (prompt i / --count in the grid's rows)", stem.display()))?;
    }
    stdout::line(format!("wrote {} and {}", out.display(), png.display()))?;
    Ok(())
}

/// The prompts of `--prompt` / `--prompts` (none: the teacher draws its own conditioning).
fn sample_prompts(a: &SampleArgs) -> anyhow::Result<Vec<String>> {
    if let Some(path) = &a.prompts {
        return Ok(boot_kit::Prompts::read(path)?.lines);
    }
    if a.prompt.iter().any(|p| p.contains('\n')) {
        return Err(InputError::new("command line", "--prompt", "a prompt holds a line break; give several --prompt or a --prompts file").into());
    }
    Ok(a.prompt.clone())
}

fn plugins(a: PluginsArgs) -> anyhow::Result<()> {
    let catalogue = match &a.config {
        Some(path) => RawConfig::read(path).and_then(|raw| load_run(raw, &[])).map_err(|e| name_source(e, &path.display().to_string()))?.2,
        None => {
            let mut catalogue = builtins();
            for file in discover(&search_dirs(&[])) {
                load(&file, &mut catalogue)?;
            }
            catalogue
        }
    };
    for (name, path) in &catalogue.loaded {
        stdout::line(format!("plugin {name}: {}", path.display()))?;
    }
    let mut entries = catalogue.entries.clone();
    entries.sort_by(|a, b| (a.component, &a.kind).cmp(&(b.component, &b.kind)));
    for e in entries {
        stdout::line(format!("{:<9} {:<18} {:<10} {}", e.component.section(), e.kind, e.provider, e.about))?;
    }
    Ok(())
}

fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let shown = a.file.display().to_string();
    let is_pickle = matches!(a.file.extension().and_then(|e| e.to_str()), Some("pt" | "pth" | "bin" | "ckpt"));
    let mut rows: Vec<(String, String, Vec<usize>)> = if is_pickle {
        boot_sdk::candle::pickle::read_all(&a.file)
            .map_err(|e| InputError::new(&shown, "", format!("cannot read PyTorch checkpoint: {e}")))?
            .into_iter()
            .map(|(k, t)| (k, format!("{:?}", t.dtype()), t.dims().to_vec()))
            .collect()
    } else {
        load_safetensors(&a.file, &boot_sdk::candle::Device::Cpu)?.into_iter().map(|(k, t)| (k, format!("{:?}", t.dtype()), t.dims().to_vec())).collect()
    };
    rows.sort();
    let total: usize = rows.iter().map(|r| r.2.iter().product::<usize>()).sum();
    for (name, dtype, dims) in &rows {
        stdout::line(format!("{name:<60} {dtype:<5} {dims:?}"))?;
    }
    stdout::line(format!("{} tensors, {total} values", rows.len()))?;
    Ok(())
}
