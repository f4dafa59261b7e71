//! The training driver: Algorithm 1 in a loop, with AdamW, EMA, checkpoints, the metrics log, sample grids
//! and progress reports.
//!
//! A step whose loss is not finite is skipped (no backward, AdamW or EMA update; logged with the running
//! count `skipped_nonfinite`, and no checkpoint is written after it); `train.max_nonfinite_in_a_row` such
//! steps in a row stop the run, keeping the checkpoints written before. Skipping does not shift later
//! draws: every step's noise, times, labels and `w` are functions of (seed, stream, step, index).
//!
//! With `train.micro_batch = N` a step's batch is run as micro-batches of at most `N` samples (gradient
//! accumulation): each keeps its samples' indices in the full batch (so their draws), its loss is scaled by
//! its share of the batch, and the summed gradient is the full-batch mean loss's; then one AdamW update (the
//! clipping on the summed gradient), one EMA update and one metrics row, as without micro-batches. A step
//! whose summed loss is not finite is skipped as a whole.

use std::path::Path;
use std::time::Instant;

use boot_sdk::candle::backprop::GradStore;
use boot_sdk::candle::{DType, Var};
use boot_sdk::rng::{normal, sample_seeds, uniform, Stream};
use boot_sdk::serde_json::json;

use crate::boot::{boot_loss, BootBatch, BootOptions, BootParts};
use crate::checkpoint::{self, Checkpoint};
use crate::components::Components;
use crate::config::RunConfig;
use crate::ema::Ema;
use crate::generate::{generate, sample_inputs};
use crate::grid::save_grid;
use crate::metrics_log::MetricsLog;
use crate::optim::{sorted_vars, AdamW, AdamWConfig};
use crate::progress::Progress;
use crate::samplers::SamplerKind;

/// How a training run treats an `out_dir` that holds an earlier run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Start from scratch; refused if `out_dir` holds an earlier run's outputs.
    Fresh,
    /// Continue from the newest checkpoint (from scratch if there is none).
    Resume,
    /// Start from scratch, deleting an earlier run's outputs.
    Overwrite,
}

/// The metrics-log key of the running count of skipped (non-finite) steps.
const SKIPPED_KEY: &str = "skipped_nonfinite";

/// What a finished training run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Step the run started from (non-zero when resumed).
    pub start_step: u64,
    /// Completed steps.
    pub steps: u64,
    /// Total loss of each step run in this call.
    pub losses: Vec<f32>,
}

/// AdamW's settings from the config.
pub fn adamw_config(cfg: &RunConfig) -> AdamWConfig {
    let t = &cfg.train;
    AdamWConfig {
        lr: t.lr,
        beta1: t.adam_betas[0],
        beta2: t.adam_betas[1],
        eps: t.adam_eps,
        weight_decay: t.weight_decay,
        grad_clip: (t.grad_clip > 0.0).then_some(t.grad_clip),
    }
}

/// Algorithm 1's options from the config.
pub fn boot_options(cfg: &RunConfig) -> BootOptions {
    let t = &cfg.train;
    BootOptions {
        delta: t.delta,
        t_min: t.t_min,
        t_max: t.t_max,
        weighting: t.loss_weighting,
        boundary_every: t.boundary_every,
        boundary_weight: t.boundary_weight,
    }
}

fn check(cfg: &RunConfig) -> boot_sdk::Result<()> {
    let t = &cfg.train;
    let bad = |key: &str, msg: &str| Err(boot_sdk::InputError::config(format!("train.{key}"), msg.to_string()).into());
    if !(0.0 <= t.t_min && t.t_min < t.t_max && t.t_max <= 1.0) {
        return bad("t_max", "need 0 <= t_min < t_max <= 1");
    }
    if !(t.delta > 0.0) {
        return bad("delta", "must be positive");
    }
    if t.batch_size == 0 {
        return bad("batch_size", "must be positive");
    }
    if let Some(m) = t.micro_batch {
        if m == 0 || m > t.batch_size {
            return bad("micro_batch", &format!("must lie in 1..=train.batch_size ({}), got {m}; leave it unset to run the whole batch at once", t.batch_size));
        }
    }
    if !(0.0..1.0).contains(&t.ema_decay) {
        return bad("ema_decay", "must lie in [0, 1)");
    }
    Ok(())
}

/// What a run writes into `out_dir`: folders, then files.
const OUTPUT_DIRS: [&str; 2] = ["checkpoints", "grids"];
const OUTPUT_FILES: [&str; 2] = ["metrics.jsonl", "eval.json"];

/// The outputs of an earlier run in `out_dir`.
fn earlier_outputs(out_dir: &Path) -> Vec<&'static str> {
    OUTPUT_DIRS.iter().chain(&OUTPUT_FILES).copied().filter(|name| out_dir.join(name).exists()).collect()
}

/// Refuses a fresh start over an earlier run's outputs; with `--overwrite`, removes them.
fn prepare_fresh(out_dir: &Path, overwrite: bool) -> boot_sdk::Result<()> {
    let found = earlier_outputs(out_dir);
    if found.is_empty() {
        return Ok(());
    }
    if !overwrite {
        let msg = format!("{} holds an earlier run ({}); pass --resume to continue it or --overwrite to replace it", out_dir.display(), found.join(", "));
        return Err(boot_sdk::InputError::config("run.out_dir", msg).into());
    }
    tracing::warn!(out_dir = %out_dir.display(), "--overwrite: removing the earlier run's {}", found.join(", "));
    for name in found {
        let p = out_dir.join(name);
        if OUTPUT_DIRS.contains(&name) {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// Trains the student from scratch or, with [`Start::Resume`], from the newest checkpoint in `run.out_dir`.
pub fn train(cfg: &RunConfig, c: &Components, how: Start) -> boot_sdk::Result<TrainSummary> {
    check(cfg)?;
    let t = &cfg.train;
    let out = cfg.run.out_dir.as_path();
    let opts = boot_options(cfg);
    let mut optim = AdamW::new(&c.student.vars, adamw_config(cfg))?;
    let ema = Ema::new(&c.student.vars, &c.ema.vars, t.ema_decay)?;
    let log = MetricsLog::new(out);
    let mut start = 0;
    let mut skipped = 0u64;
    match (how, checkpoint::latest(out)) {
        (Start::Resume, Some(path)) => {
            let ck = Checkpoint::read(&path, &c.device)?;
            if ck.seed()? != cfg.run.seed {
                let msg = format!("checkpoint {} was written with seed {}, the config has {}", path.display(), ck.seed()?, cfg.run.seed);
                return Err(boot_sdk::InputError::config("run.seed", msg).into());
            }
            ck.restore_vars("student", &c.student.vars)?;
            ck.restore_vars("ema", &c.ema.vars)?;
            ck.restore_optimizer(&mut optim)?;
            start = ck.step()?;
            log.truncate_after(start)?;
            skipped = log.last_u64(SKIPPED_KEY)?.unwrap_or(0);
            tracing::info!(step = start, checkpoint = %path.display(), "resuming");
        }
        (Start::Resume, None) => tracing::warn!(out_dir = %out.display(), "--resume: no checkpoint found, starting from scratch"),
        (Start::Fresh | Start::Overwrite, _) => prepare_fresh(out, how == Start::Overwrite)?,
    }
    std::fs::create_dir_all(out)?;
    let parts = BootParts {
        student: c.student.net.as_ref(),
        teacher: c.teacher.as_ref(),
        guidance: c.guidance.as_ref(),
        solver: c.solver.as_ref(),
        schedule: c.schedule.as_ref(),
    };
    let progress = Progress::new(t.progress, t.progress_every, start, t.steps);
    let seed = cfg.run.seed;
    let vars = sorted_vars(&c.student.vars);
    let began = Instant::now();
    let mut losses = Vec::new();
    let mut in_a_row = 0u64;
    for step in start..t.steps {
        let loss = step_loss(&opts, &parts, c, seed, t.batch_size, t.micro_batch, &vars, step)?;
        let total = loss.total;
        losses.push(total);
        let done = step + 1;
        if !total.is_finite() {
            skipped += 1;
            in_a_row += 1;
            tracing::warn!(step = done, loss = %total, in_a_row, "non-finite loss: update skipped");
            log.append(&json!({
                "step": done, "loss": null, "loss_nonfinite": total.to_string(), "skipped": true,
                SKIPPED_KEY: skipped, "seconds": began.elapsed().as_secs_f64(),
            }))?;
            if in_a_row >= t.max_nonfinite_in_a_row.max(1) {
                progress.finish();
                let kept = checkpoint::latest(out).map(|p| p.display().to_string()).unwrap_or_else(|| "none written".into());
                anyhow::bail!(
                    "the loss was not finite at {in_a_row} steps in a row (steps {}..={done}, train.max_nonfinite_in_a_row = {}); last good checkpoint: {kept}; lower train.lr or set train.grad_clip",
                    done + 1 - in_a_row,
                    t.max_nonfinite_in_a_row
                );
            }
            progress.update(done, total);
            continue;
        }
        in_a_row = 0;
        let grads = loss.grads.ok_or_else(|| anyhow::anyhow!("step {done}: a finite loss without gradients"))?;
        let grad_norm = optim.step(&grads)?;
        ema.update()?;
        if t.log_every > 0 && (done % t.log_every == 0 || done == t.steps) {
            log.append(&json!({
                "step": done, "loss": total, "loss_bootstrap": loss.bootstrap, "loss_boundary": loss.boundary,
                "t_mean": loss.t_mean, "grad_norm": grad_norm, "lr": t.lr, SKIPPED_KEY: skipped,
                "seconds": began.elapsed().as_secs_f64(),
            }))?;
        }
        if (t.grid_every > 0 && done % t.grid_every == 0) || done == t.steps {
            write_grid(cfg, c, done)?;
        }
        if (t.checkpoint_every > 0 && done % t.checkpoint_every == 0) || done == t.steps {
            checkpoint::save(out, done, seed, &c.student.vars, &c.ema.vars, &optim, t.keep_checkpoints)?;
        }
        progress.update(done, total);
    }
    progress.finish();
    Ok(TrainSummary { start_step: start, steps: t.steps, losses })
}

/// One step's loss values and, when its loss is finite, the gradient of the full batch's mean loss.
struct StepLoss {
    /// `L_BS + beta L_BC` of the full batch.
    total: f32,
    /// The bootstrapping loss of the full batch.
    bootstrap: f32,
    /// The boundary loss of the full batch, on steps that compute it.
    boundary: Option<f32>,
    /// Mean target time of the full batch.
    t_mean: f64,
    /// Gradients of `total` (`None` when it is not finite: the step is skipped).
    grads: Option<GradStore>,
}

/// The inputs of samples `first..first + n` of step `step`'s batch: each sample's draws depend on its index
/// in the full batch alone.
fn draw_batch(c: &Components, seed: u64, step: u64, first: usize, n: usize) -> boot_sdk::Result<BootBatch> {
    let (first, shape) = (first as u64, c.sample_shape());
    Ok(BootBatch {
        eps: normal(&sample_seeds(seed, Stream::Noise, step, first, n), &shape, &c.device)?,
        u: uniform(&sample_seeds(seed, Stream::Time, step, first, n), 0.0, 1.0),
        cond: c.teacher.sample_cond(&sample_seeds(seed, Stream::Cond, step, first, n))?,
        w: c.guidance.sample_w(&sample_seeds(seed, Stream::Guidance, step, first, n)),
    })
}

fn scalar(t: &boot_sdk::candle::Tensor) -> boot_sdk::Result<f32> {
    Ok(t.to_dtype(DType::F32)?.to_scalar::<f32>()?)
}

/// The loss of step `step` over a batch of `batch` samples and, when finite, its gradient; with `micro_batch`
/// below `batch`, computed in micro-batches whose share-scaled gradients are summed (only the gradients of
/// `vars` are kept between micro-batches).
#[allow(clippy::too_many_arguments)]
fn step_loss(
    opts: &BootOptions,
    parts: &BootParts,
    c: &Components,
    seed: u64,
    batch: usize,
    micro_batch: Option<usize>,
    vars: &[(String, Var)],
    step: u64,
) -> boot_sdk::Result<StepLoss> {
    let micro = micro_batch.unwrap_or(batch).clamp(1, batch.max(1));
    if micro >= batch {
        let loss = boot_loss(opts, parts, &draw_batch(c, seed, step, 0, batch)?, step)?;
        let total = scalar(&loss.total)?;
        let grads = if total.is_finite() { Some(loss.total.backward()?) } else { None };
        return Ok(StepLoss { total, bootstrap: loss.bootstrap, boundary: loss.boundary, t_mean: loss.t_mean, grads });
    }
    let (mut total, mut bootstrap, mut boundary, mut t_mean) = (0f64, 0f64, None::<f64>, 0f64);
    let mut acc = Some(GradStore::default());
    let mut first = 0;
    while first < batch {
        let n = micro.min(batch - first);
        let share = n as f64 / batch as f64;
        let loss = boot_loss(opts, parts, &draw_batch(c, seed, step, first, n)?, step)?;
        let part = (loss.total * share)?;
        total += scalar(&part)? as f64;
        bootstrap += loss.bootstrap as f64 * share;
        if let Some(bc) = loss.boundary {
            boundary = Some(boundary.unwrap_or(0.0) + bc as f64 * share);
        }
        t_mean += loss.t_mean * share;
        // Once the sum is not finite the step is skipped: the rest is only evaluated for the logged value.
        if !total.is_finite() {
            acc = None;
        }
        if let Some(acc) = acc.as_mut() {
            let mut grads = part.backward()?;
            for (_, var) in vars {
                if let Some(g) = grads.remove(var.as_tensor()) {
                    let sum = match acc.remove(var.as_tensor()) {
                        Some(prev) => (prev + g)?,
                        None => g,
                    };
                    acc.insert(var.as_tensor(), sum);
                }
            }
        }
        first += n;
    }
    let total = total as f32;
    let grads = if total.is_finite() { acc } else { None };
    Ok(StepLoss { total, bootstrap: bootstrap as f32, boundary: boundary.map(|b| b as f32), t_mean, grads })
}

/// Writes `grids/step-N.png`: EMA-student samples on the fixed evaluation inputs, decoded to pixels by the
/// teacher ([`boot_sdk::Teacher::decode`]).
pub fn write_grid(cfg: &RunConfig, c: &Components, step: u64) -> boot_sdk::Result<()> {
    let n = cfg.train.grid_samples.max(1);
    let inputs = sample_inputs(c, cfg.run.seed, 0, n, None)?;
    let samples = generate(c, c.ema.net.as_ref(), SamplerKind::Student, &inputs, cfg.train.t_max, cfg.train.t_min)?;
    let cols = (n as f64).sqrt().ceil() as usize;
    save_grid(&cfg.run.out_dir.join("grids").join(format!("step-{step:08}.png")), &c.teacher.decode(&samples)?, cols)
}
